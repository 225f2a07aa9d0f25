//! Plans: JSON lines (one object per line: input id → value or list of values, plus an
//! optional `key`) or CSV (a header of input ids, plus an optional `key` column).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::error::Error;

/// One row of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    /// The line the row came from (1-based; 0 for items added in code).
    pub line: usize,
    /// The item key: the row's `key`, else `row-<line>`.
    pub key: String,
    /// Input id → values (several for inputs that allow multiple values).
    pub values: PlanValues,
}

/// An item's values: input id → values, sorted by id. A map as small as its entries (a
/// `BTreeMap` node holds room for eleven): a 100,000-row plan is held whole while it is
/// checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanValues(Vec<(String, Vec<String>)>);

impl PlanValues {
    /// The values of input `id`.
    pub fn get(&self, id: &str) -> Option<&Vec<String>> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(id))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Adds `value` to input `id`'s values.
    pub fn push(&mut self, id: impl Into<String>, value: impl Into<String>) {
        let id = id.into();
        match self.0.binary_search_by(|(k, _)| k.cmp(&id)) {
            Ok(i) => self.0[i].1.push(value.into()),
            Err(i) => self.0.insert(i, (id, vec![value.into()])),
        }
    }

    /// Input ids, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// (input id, values), sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// How many inputs have values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No input has a value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Gives back spare room (rows are kept for the whole check).
    fn shrink(&mut self) {
        for (k, v) in &mut self.0 {
            k.shrink_to_fit();
            v.shrink_to_fit();
            for s in v.iter_mut() {
                s.shrink_to_fit();
            }
        }
        self.0.shrink_to_fit();
    }
}

impl From<BTreeMap<String, Vec<String>>> for PlanValues {
    fn from(map: BTreeMap<String, Vec<String>>) -> Self {
        let mut values = PlanValues(map.into_iter().collect());
        values.shrink();
        values
    }
}

impl FromIterator<(String, Vec<String>)> for PlanValues {
    fn from_iter<I: IntoIterator<Item = (String, Vec<String>)>>(iter: I) -> Self {
        let mut values = PlanValues::default();
        for (k, vs) in iter {
            for v in vs {
                values.push(k.clone(), v);
            }
        }
        values.shrink();
        values
    }
}

impl std::ops::Index<&str> for PlanValues {
    type Output = Vec<String>;

    /// The values of input `id`; panics when it has none (as a map's index does).
    fn index(&self, id: &str) -> &Vec<String> {
        match self.get(id) {
            Some(v) => v,
            None => panic!("no values for input `{id}`"),
        }
    }
}

impl serde::Serialize for PlanValues {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for PlanValues {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, Vec<String>>::deserialize(deserializer).map(PlanValues::from)
    }
}

impl PlanItem {
    /// An item from a typed technique value, checked by the compiler like a single run:
    /// `PlanItem::typed("face-1", &CctvCam { input_image })`.
    pub fn typed<T: crate::Technique>(key: impl Into<String>, technique: &T) -> Self {
        let mut values = PlanValues::default();
        for input in technique.inputs() {
            values.push(input.id.into_owned(), input.value);
        }
        PlanItem::new(key, values)
    }

    /// An item added in code: input id → values, e.g. a `BTreeMap<String, Vec<String>>`.
    pub fn new(key: impl Into<String>, values: impl Into<PlanValues>) -> Self {
        PlanItem {
            line: 0,
            key: key.into(),
            values: values.into(),
        }
    }
}

fn plan_error(path: &Path, line: usize, what: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("{}:{line}: {what}", path.display()))
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads a plan: CSV when the file name ends in `.csv`, JSON lines otherwise.
pub fn read_plan(path: &Path) -> Result<Vec<PlanItem>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    // Editors on Windows start UTF-8 files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let items = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        read_csv(path, text)?
    } else {
        read_jsonl(path, text)?
    };
    let mut seen = BTreeMap::new();
    for item in &items {
        if let Some(first) = seen.insert(item.key.clone(), item.line) {
            return Err(plan_error(
                path,
                item.line,
                format!(
                    "key {:?} is used by line {first} too; keys must be unique",
                    item.key
                ),
            ));
        }
    }
    if items.is_empty() {
        return Err(plan_error(path, 0, "the plan has no items"));
    }
    Ok(items)
}

fn read_jsonl(path: &Path, text: &str) -> Result<Vec<PlanItem>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let obj: serde_json::Map<String, Value> = serde_json::from_str(line)
            .map_err(|e| plan_error(path, n, format!("not a JSON object: {e}")))?;
        let mut key = format!("row-{n}");
        let mut values = BTreeMap::new();
        for (id, v) in obj {
            if id == "key" {
                key = scalar(&v)
                    .ok_or_else(|| plan_error(path, n, "`key` must be a string or number"))?;
                continue;
            }
            let list = match &v {
                Value::Array(items) => items
                    .iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        plan_error(path, n, format!("input `{id}`: values must be strings"))
                    })?,
                Value::Null => continue,
                other => vec![scalar(other).ok_or_else(|| {
                    plan_error(path, n, format!("input `{id}`: a value must be a string"))
                })?],
            };
            values.insert(id, list);
        }
        out.push(PlanItem {
            line: n,
            key,
            values: values.into(),
        });
    }
    Ok(out)
}

fn read_csv(path: &Path, text: &str) -> Result<Vec<PlanItem>, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| plan_error(path, 1, e))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let distinct: BTreeSet<&String> = headers.iter().collect();
    if distinct.len() != headers.len() {
        return Err(plan_error(
            path,
            1,
            "a column name appears twice in the header",
        ));
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        // The line the record starts on (a quoted cell may span lines).
        let record = record.map_err(|e| {
            let at = e.position().map_or(i + 2, |p| p.line() as usize);
            plan_error(path, at, e)
        })?;
        let n = record.position().map_or(i + 2, |p| p.line() as usize);
        let mut key = format!("row-{n}");
        let mut values = BTreeMap::new();
        for (h, cell) in headers.iter().zip(record.iter()) {
            if h == "key" {
                if !cell.is_empty() {
                    key = cell.to_owned();
                }
            } else if !cell.is_empty() {
                values.insert(h.clone(), vec![cell.to_owned()]);
            }
        }
        out.push(PlanItem {
            line: n,
            key,
            values: values.into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "techniques")]
    #[test]
    fn typed_items_carry_the_generated_inputs() {
        let face = crate::ImageUrl::parse("https://example.com/a.png").unwrap();
        let item = PlanItem::typed("a", &crate::techniques::CctvCam { input_image: face });
        assert_eq!(item.values["input_image"], ["https://example.com/a.png"]);
        assert_eq!(item.key, "a");
    }

    #[test]
    fn jsonl_and_csv_plans_read_alike() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("p.jsonl");
        std::fs::write(
            &j,
            "{\"key\": \"a\", \"image\": \"x.png\"}\n\n{\"image\": [\"y.png\", \"z.png\"]}\n",
        )
        .unwrap();
        let items = read_plan(&j).unwrap();
        assert_eq!(items[0].key, "a");
        assert_eq!(items[1].key, "row-3");
        assert_eq!(items[1].values["image"], ["y.png", "z.png"]);
        let c = dir.path().join("p.csv");
        std::fs::write(&c, "key,image,prompt\na,x.png,\n,y.png,hello\n").unwrap();
        let items = read_plan(&c).unwrap();
        assert_eq!(items[0].values.get("prompt"), None);
        assert_eq!(items[1].key, "row-3");
        assert_eq!(items[1].values["prompt"], ["hello"]);
    }

    #[test]
    fn csv_rows_are_named_by_the_line_they_start_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, "prompt\n\"two\nlines\"\nthird\n").unwrap();
        let items = read_plan(&path).unwrap();
        assert_eq!(items[0].line, 2);
        assert_eq!(items[0].values["prompt"], ["two\nlines"]);
        assert_eq!(items[1].line, 4);
        assert_eq!(items[1].key, "row-4");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            (
                "p.jsonl",
                "\u{feff}{\"key\": \"a\", \"prompt\": \"hi\"}\r\n",
            ),
            ("p.csv", "\u{feff}key,prompt\r\na,hi\r\n"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let items = read_plan(&path).unwrap();
            assert_eq!(items[0].key, "a", "{name}");
            assert_eq!(items[0].values["prompt"], ["hi"], "{name}");
        }
    }

    #[test]
    fn duplicate_keys_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("p.jsonl");
        std::fs::write(&j, "{\"key\": \"a\"}\n{\"key\": \"a\"}\n").unwrap();
        let err = read_plan(&j).unwrap_err().to_string();
        assert!(err.contains("p.jsonl:2") && err.contains("line 1"), "{err}");
        std::fs::write(&j, "{\"image\": \"x\"}\nnot json\n").unwrap();
        assert!(read_plan(&j).unwrap_err().to_string().contains("p.jsonl:2"));
    }
}

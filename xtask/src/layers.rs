//! `cargo xtask layers`: every import cycle between modules, at any depth. Modules are
//! floors: a module may use its siblings below it, never one that uses it back, so each
//! folder reads bottom-up. For every module with children, the children's uses of each other
//! form a graph (a use of `crate::a::b::c` from inside `crate::a::x` is an arrow `x → b`
//! among `a`'s children); a strongly connected set of two or more is a cycle, reported with
//! the files and paths that tie it.
//!
//! Files are read as token streams (comments and string contents are not code), inline
//! `mod name { … }` blocks included (`#[cfg(test)] mod tests` too: a test that reaches into
//! a sibling is a use). A path through a `pub use` re-export (`crate::Error`, re-exported
//! from `error`) counts as a use of where the item lives. Paths inside macros that the
//! tokens do not show (built by `concat!`, say) are not seen: a check, not a proof.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// A module's path from the crate root (`["batch", "drive"]`).
type ModPath = Vec<String>;

/// One use of another module, for the report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Use {
    file: PathBuf,
    path: String,
}

/// A cycle among the children of `parent`: its members, and the uses that tie them.
#[derive(Debug)]
pub struct Cycle {
    pub parent: String,
    pub members: Vec<String>,
    /// `from → to: file (path)` lines.
    pub ties: Vec<String>,
}

/// What a crate's modules are and who uses whom.
#[derive(Default)]
struct Crate {
    /// Every module (file or inline), root included.
    modules: BTreeSet<ModPath>,
    /// Re-exports: (module, name) → the path it names.
    reexports: BTreeMap<(ModPath, String), ModPath>,
    /// Raw uses: (the using module, the absolute path used, where).
    uses: Vec<(ModPath, ModPath, Use)>,
}

/// The cycles of the crate at `crate_dir` (its `src/`, without `src/bin/`), and how many
/// modules it has.
pub fn check(crate_dir: &Path) -> Result<(usize, Vec<Cycle>), String> {
    let src = crate_dir.join("src");
    let mut files = Vec::new();
    collect(&src, &mut files)?;
    files.sort();
    let mut krate = Crate::default();
    krate.modules.insert(Vec::new());
    let mut parsed = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap_or(&file).to_path_buf();
        if rel.starts_with("bin") {
            continue;
        }
        let Some(module) = module_of(&rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("reading {}: {e}", file.display()))?;
        let tokens = TokenStream::from_str(&text)
            .map_err(|e| format!("{} is not Rust tokens: {e}", file.display()))?;
        krate.modules.insert(module.clone());
        parsed.push((rel, module, tokens));
    }
    for (rel, module, tokens) in &parsed {
        scan(&mut krate, rel, module, tokens.clone());
    }
    let cycles = krate.cycles();
    Ok((krate.modules.len(), cycles))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `lib.rs`/`main.rs` → the root; `a.rs`, `a/mod.rs` → `a`; `a/b.rs` → `a::b`.
fn module_of(rel: &Path) -> Option<ModPath> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [only] if only == "lib" || only == "main" => return Some(Vec::new()),
        _ => {}
    }
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    (!parts.is_empty()).then_some(parts)
}

/// Records the modules, re-exports and uses in `tokens`, read as the body of `module`.
fn scan(krate: &mut Crate, file: &Path, module: &ModPath, tokens: TokenStream) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    let mut public = false;
    while i < trees.len() {
        match &trees[i] {
            TokenTree::Ident(id) if id == "pub" => {
                public = true;
                i += 1;
                // `pub(crate)`, `pub(super)`: still a re-export for the crate.
                if let Some(TokenTree::Group(g)) = trees.get(i)
                    && g.delimiter() == Delimiter::Parenthesis
                {
                    i += 1;
                }
                continue;
            }
            TokenTree::Ident(id) if id == "mod" => {
                if let (Some(TokenTree::Ident(name)), Some(TokenTree::Group(body))) =
                    (trees.get(i + 1), trees.get(i + 2))
                    && body.delimiter() == Delimiter::Brace
                {
                    let mut inner = module.clone();
                    inner.push(name.to_string());
                    krate.modules.insert(inner.clone());
                    scan(krate, file, &inner, body.stream());
                    i += 3;
                    public = false;
                    continue;
                }
            }
            TokenTree::Ident(id) if id == "use" => {
                let end = trees[i..]
                    .iter()
                    .position(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ';'))
                    .map_or(trees.len(), |p| i + p);
                for mut path in use_paths(&trees[i + 1..end]) {
                    // `use child::x` names a child module of this one (2018 paths).
                    if path.first().is_some_and(|s| !is_anchor(s)) {
                        let mut child = module.clone();
                        child.push(path[0].clone());
                        if !krate.modules.contains(&child) {
                            continue;
                        }
                        path.insert(0, "self".to_owned());
                    }
                    let Some(abs) = absolute(module, &path) else {
                        continue;
                    };
                    if public && let Some(name) = path.last().filter(|n| n.as_str() != "*") {
                        krate
                            .reexports
                            .insert((module.clone(), name.clone()), abs.clone());
                    }
                    krate.record(module, abs, file, &path);
                }
                i = end + 1;
                public = false;
                continue;
            }
            TokenTree::Ident(id) if is_anchor(&id.to_string()) => {
                if let Some((path, next)) = plain_path(&trees, i)
                    && let Some(abs) = absolute(module, &path)
                {
                    krate.record(module, abs, file, &path);
                    i = next;
                    public = false;
                    continue;
                }
            }
            TokenTree::Group(g) => scan(krate, file, module, g.stream()),
            _ => {}
        }
        public = false;
        i += 1;
    }
}

fn is_anchor(word: &str) -> bool {
    matches!(word, "crate" | "super" | "self")
}

fn is_colons(trees: &[TokenTree], i: usize) -> bool {
    matches!(
        (trees.get(i), trees.get(i + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && b.as_char() == ':'
    )
}

/// `crate::a::b` (or `super::…`, `self::…`) starting at `i`: its segments and the index
/// after it.
fn plain_path(trees: &[TokenTree], i: usize) -> Option<(Vec<String>, usize)> {
    let mut segments = Vec::new();
    let mut j = i;
    while let Some(TokenTree::Ident(id)) = trees.get(j) {
        segments.push(id.to_string());
        j += 1;
        if !is_colons(trees, j) {
            break;
        }
        j += 2;
    }
    (segments.len() >= 2).then_some((segments, j))
}

/// The paths a `use` tree names (groups expanded); renames (`as x`) keep the path.
fn use_paths(trees: &[TokenTree]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    tree_paths(trees, Vec::new(), &mut out);
    out
}

fn tree_paths(trees: &[TokenTree], prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    // Split at top-level commas (inside a group, each part is a tree of its own).
    let mut part: Vec<TokenTree> = Vec::new();
    let mut parts = Vec::new();
    for t in trees {
        if matches!(t, TokenTree::Punct(p) if p.as_char() == ',') {
            parts.push(std::mem::take(&mut part));
        } else {
            part.push(t.clone());
        }
    }
    parts.push(part);
    for part in parts {
        let mut path = prefix.clone();
        let mut j = 0;
        // A leading `::` (an extern crate path) is none of ours.
        if is_colons(&part, 0) {
            continue;
        }
        loop {
            match part.get(j) {
                Some(TokenTree::Ident(id)) if id == "as" => break,
                Some(TokenTree::Ident(id)) => path.push(id.to_string()),
                Some(TokenTree::Punct(p)) if p.as_char() == '*' => path.push("*".to_owned()),
                Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
                    let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                    tree_paths(&inner, path.clone(), out);
                    path.clear();
                    break;
                }
                _ => break,
            }
            j += 1;
            if !is_colons(&part, j) {
                break;
            }
            j += 2;
        }
        if !path.is_empty() && path != prefix {
            out.push(path);
        }
    }
}

/// `path` (anchored) as seen from `module`, from the crate root.
fn absolute(module: &ModPath, path: &[String]) -> Option<ModPath> {
    let mut at = module.clone();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            at.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                at.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    at.extend(rest.iter().filter(|s| s.as_str() != "self").cloned());
    Some(at)
}

impl Crate {
    /// `module` uses `abs` (written `path` in `file`).
    fn record(&mut self, module: &ModPath, abs: ModPath, file: &Path, path: &[String]) {
        self.uses.push((
            module.clone(),
            abs,
            Use {
                file: file.to_path_buf(),
                path: path.join("::"),
            },
        ));
    }

    /// The module `path` lands in: its longest prefix that is a module, followed through a
    /// re-export when the next segment is one (a few steps at most).
    fn target(&self, path: &ModPath) -> ModPath {
        let mut path = path.clone();
        for _ in 0..4 {
            let known = (0..=path.len())
                .rev()
                .find(|&n| self.modules.contains(&path[..n]))
                .unwrap_or(0);
            let module = path[..known].to_vec();
            let Some(next) = path.get(known) else {
                return module;
            };
            match self.reexports.get(&(module.clone(), next.clone())) {
                Some(source) if source != &path[..=known] => {
                    let mut followed = source.clone();
                    followed.extend(path[known + 1..].iter().cloned());
                    path = followed;
                }
                _ => return module,
            }
        }
        path
    }

    fn cycles(&self) -> Vec<Cycle> {
        // parent → (child → child → uses)
        let mut graphs: BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, BTreeSet<Use>>>> =
            BTreeMap::new();
        for (from, used, at) in &self.uses {
            let to = self.target(used);
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // A use of an ancestor or a descendant is not an arrow between siblings.
            let (Some(a), Some(b)) = (from.get(common), to.get(common)) else {
                continue;
            };
            graphs
                .entry(from[..common].to_vec())
                .or_default()
                .entry(a.clone())
                .or_default()
                .entry(b.clone())
                .or_default()
                .insert(at.clone());
        }
        let mut cycles = Vec::new();
        for (parent, graph) in &graphs {
            for members in strongly_connected(graph) {
                let mut ties = Vec::new();
                for a in &members {
                    for (b, uses) in graph.get(a).into_iter().flatten() {
                        if members.contains(b) {
                            for u in uses.iter().take(3) {
                                ties.push(format!("{a} → {b}: {} ({})", u.file.display(), u.path));
                            }
                        }
                    }
                }
                cycles.push(Cycle {
                    parent: if parent.is_empty() {
                        "crate".to_owned()
                    } else {
                        format!("crate::{}", parent.join("::"))
                    },
                    members: members.into_iter().collect(),
                    ties,
                });
            }
        }
        cycles
    }
}

/// Tarjan's strongly connected sets of two or more.
fn strongly_connected(
    graph: &BTreeMap<String, BTreeMap<String, BTreeSet<Use>>>,
) -> Vec<BTreeSet<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, BTreeSet<Use>>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on.insert(v);
            let graph = self.graph;
            for w in graph.get(v).into_iter().flat_map(|m| m.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low[v];
                    self.low.insert(v, lv.min(lw));
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low[v];
                    self.low.insert(v, lv.min(iw));
                }
            }
            if self.low[v] == self.index[v] {
                let mut set = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    set.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    self.out.push(set);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out
}

/// `cargo xtask layers [CRATE…]`: every crate of the workspace by default.
pub fn run(root: &Path, crates: &[String]) -> Result<(), String> {
    let crates: Vec<String> = if crates.is_empty() {
        ["flora-api", "flora-codegen", "xtask"]
            .map(str::to_owned)
            .to_vec()
    } else {
        crates.to_vec()
    };
    let mut failed = false;
    for name in &crates {
        let (modules, cycles) = check(&root.join(name))?;
        if cycles.is_empty() {
            println!("{name}: {modules} modules, no import cycle at any depth");
            continue;
        }
        failed = true;
        for c in &cycles {
            println!(
                "{name}: import cycle among the modules of {}: {}",
                c.parent,
                c.members.join(", ")
            );
            for t in &c.ties {
                println!("    {t}");
            }
        }
    }
    if failed {
        Err(
            "import cycles found (above): make one side a floor below the other, e.g. by \
             moving what both need into a module of its own"
                .to_owned(),
        )
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join("src").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn a_nested_cycle_is_found_naming_both_files() {
        let dir = crate_with(&[
            ("lib.rs", "mod cli;"),
            ("cli/mod.rs", "mod batch; mod commands;"),
            (
                "cli/batch.rs",
                "use super::commands::helper;\npub fn run() {}",
            ),
            (
                "cli/commands.rs",
                "pub fn helper() { crate::cli::batch::run() }",
            ),
        ]);
        let (_, cycles) = check(dir.path()).unwrap();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        let c = &cycles[0];
        assert_eq!(c.parent, "crate::cli");
        assert_eq!(c.members, ["batch", "commands"]);
        let ties = c.ties.join("\n");
        assert!(ties.contains("cli/batch.rs"), "{ties}");
        assert!(ties.contains("cli/commands.rs"), "{ties}");
    }

    #[test]
    fn floors_comments_strings_ancestors_and_extern_paths_are_no_cycle() {
        let dir = crate_with(&[
            (
                "lib.rs",
                "mod a; mod b; pub use a::Thing;\n// crate::b::x in a comment",
            ),
            ("a.rs", "pub struct Thing; const S: &str = \"crate::b::y\";"),
            (
                "b/mod.rs",
                "mod c; use crate::Thing; use ::std::fmt; fn f() { c::g() }",
            ),
            (
                "b/c.rs",
                "use super::super::a::Thing; pub fn g() { super::f2() }",
            ),
        ]);
        let (modules, cycles) = check(dir.path()).unwrap();
        assert!(cycles.is_empty(), "{cycles:?}");
        assert_eq!(modules, 4);
    }

    #[test]
    fn a_cycle_through_a_reexport_and_a_test_module_is_found() {
        let dir = crate_with(&[
            ("lib.rs", "mod a; mod b; pub use b::Other;"),
            (
                "a.rs",
                "pub fn f() {}\n#[cfg(test)] mod tests { use crate::Other; }",
            ),
            ("b.rs", "pub struct Other; fn g() { crate::a::f() }"),
        ]);
        let (_, cycles) = check(dir.path()).unwrap();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(cycles[0].members, ["a", "b"]);
    }

    #[test]
    fn the_workspace_has_no_cycle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for name in ["flora-api", "flora-codegen", "xtask"] {
            let (_, cycles) = check(&root.join(name)).unwrap();
            let report: Vec<String> = cycles
                .iter()
                .map(|c| {
                    format!(
                        "{}: {}\n{}",
                        c.parent,
                        c.members.join(", "),
                        c.ties.join("\n")
                    )
                })
                .collect();
            assert!(cycles.is_empty(), "{name}:\n{}", report.join("\n"));
        }
    }
}

//! A param's value read from text by its catalog type: `floret generate`'s flags and a batch
//! plan's cells go through this one reading, so a value means the same in both.

use serde_json::{Map, Value, json};

use crate::model::ParamKind;

/// Why a text is not a value of its param: the text, and what it must be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NotAValue {
    pub text: String,
    pub wanted: &'static str,
}

/// The JSON value of `given` (one text; several for `string[]`, and a dict's `NAME=X`
/// pairs) read as a param of `kind`. Ranges and options are `check_params`'s to check.
pub(crate) fn param_from_text(kind: ParamKind, given: &[&str]) -> Result<Value, NotAValue> {
    let bad = |text: &str, wanted| NotAValue {
        text: text.to_owned(),
        wanted,
    };
    let one = match (kind, given) {
        (ParamKind::Strings | ParamKind::Dict, _) => "",
        (_, [one]) => one,
        _ => return Err(bad(&given.join(", "), "one value")),
    };
    let number = |t: &str| t.trim().parse::<f64>().ok().filter(|x| x.is_finite());
    Ok(match kind {
        ParamKind::String => json!(one),
        ParamKind::Strings => json!(given),
        ParamKind::Bool => match one {
            "true" => json!(true),
            "false" => json!(false),
            v => return Err(bad(v, "true or false")),
        },
        ParamKind::Int => json!(one.parse::<i64>().map_err(|_| bad(one, "a whole number"))?),
        ParamKind::Seed => json!(
            one.parse::<u64>()
                .map_err(|_| bad(one, "a seed: a whole number, 0 or more"))?
        ),
        ParamKind::Float => json!(number(one).ok_or_else(|| bad(one, "a number"))?),
        ParamKind::Dict => {
            let mut numbers = Map::new();
            for pair in given {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| bad(pair, "NAME=NUMBER"))?;
                let x = number(v).ok_or_else(|| bad(pair, "NAME=NUMBER"))?;
                numbers.insert(k.trim().to_owned(), json!(x));
            }
            Value::Object(numbers)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_become_values_of_their_param_type() {
        let read = |kind, given: &[&str]| param_from_text(kind, given);
        assert_eq!(read(ParamKind::Int, &["20"]), Ok(json!(20)));
        assert_eq!(read(ParamKind::Float, &["3.5"]), Ok(json!(3.5)));
        assert_eq!(read(ParamKind::Bool, &["true"]), Ok(json!(true)));
        assert_eq!(read(ParamKind::Strings, &["a", "b"]), Ok(json!(["a", "b"])));
        assert_eq!(
            read(ParamKind::Dict, &["a=1", "b = 2"]),
            Ok(json!({"a": 1.0, "b": 2.0}))
        );
        assert_eq!(read(ParamKind::Seed, &["-1"]).unwrap_err().text, "-1");
        assert_eq!(
            read(ParamKind::Float, &["inf"]).unwrap_err().wanted,
            "a number"
        );
        assert_eq!(
            read(ParamKind::Int, &["1", "2"]).unwrap_err().wanted,
            "one value"
        );
    }
}

//! Strict reading of configuration values: a misspelt key in a bundle's YAML is an error,
//! not a silently ignored setting.
//!
//! serde's `deny_unknown_fields` does not work together with `flatten`, which the
//! configuration types use to share option groups; so the check is done generically:
//! the value is deserialised, serialised back (every known field reappears, defaults
//! included) and any key of the input missing from that round trip is unknown.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Deserialises `value` into `T`, refusing keys `T` does not know, named by their path
/// (`loss.smoth_nr`).
pub fn from_value<T: DeserializeOwned + Serialize>(value: Value) -> Result<T, String> {
    let (parsed, unknown) = parse_reporting_unknown(value)?;
    if unknown.is_empty() {
        Ok(parsed)
    } else {
        Err(format!(
            "unknown key{} {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", ")
        ))
    }
}

/// Deserialises `value` into `T` and lists the key paths of `value` that `T` does not
/// know, for callers that say where each key came from.
pub fn parse_reporting_unknown<T: DeserializeOwned + Serialize>(
    value: Value,
) -> Result<(T, Vec<String>), String> {
    let parsed: T = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let key = e.path().to_string();
        if key == "." {
            e.inner().to_string()
        } else {
            format!("{key}: {}", e.inner())
        }
    })?;
    let known = serde_json::to_value(&parsed).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    unknown_keys(&value, &known, "", &mut unknown);
    Ok((parsed, unknown))
}

fn unknown_keys(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(input), Value::Object(known)) => {
            for (key, value) in input {
                let at = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(k) => unknown_keys(value, k, &at, out),
                    None => out.push(at),
                }
            }
        }
        (Value::Array(input), Value::Array(known)) => {
            for (i, (value, k)) in input.iter().zip(known).enumerate() {
                unknown_keys(value, k, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Inner {
        #[serde(default)]
        rate: f64,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Outer {
        #[serde(flatten)]
        inner: Inner,
        #[serde(default)]
        steps: Vec<Inner>,
    }

    #[test]
    fn known_keys_pass_and_unknown_ones_are_named_with_their_path() {
        let ok: Outer = from_value(json!({"rate": 0.5, "steps": [{"rate": 1.0}]})).unwrap();
        assert_eq!(ok.inner.rate, 0.5);
        let err =
            from_value::<Outer>(json!({"rte": 0.5, "steps": [{"rate": 1.0, "x": 2}]})).unwrap_err();
        assert_eq!(err, "unknown keys rte, steps[0].x");
    }
}

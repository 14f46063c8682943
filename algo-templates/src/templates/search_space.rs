//! What `autoseg tune` may change in a bundle: a list of configuration keys, each with the
//! range it is drawn from. Every bundle carries its own `search_space.yaml`, written by
//! `generate` around the template's chosen values, so a user widens, narrows or adds keys by
//! editing one file.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::bundle::BundleError;

/// One tunable key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// The configuration key (dotted path, as `--set` takes it).
    pub key: String,
    /// How values are drawn.
    #[serde(flatten)]
    pub range: Range,
}

/// A parameter's range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Range {
    /// Uniform in the logarithm: rates and decays.
    LogUniform {
        /// Smallest value (> 0).
        low: f64,
        /// Largest value.
        high: f64,
    },
    /// Uniform.
    Uniform {
        /// Smallest value.
        low: f64,
        /// Largest value.
        high: f64,
    },
    /// One of a list (numbers, lists, names).
    Choice {
        /// The values.
        values: Vec<Value>,
    },
}

/// A bundle's search space.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpace {
    /// The tunable keys.
    pub params: Vec<Param>,
}

const HEADER: &str = "# What `autoseg tune` may change in this bundle: each key (as --set takes it) \
and its range\n# (log_uniform / uniform: low, high; choice: values). Edit freely.\n";

impl SearchSpace {
    /// The space around a generated configuration: the learning rate from a fifth to 5x the
    /// template's (log), weight decay a decade either way (log), the network at half or full
    /// width, Dice + cross-entropy or Dice + focal loss, and the rotation and scaling
    /// augmentations' probabilities from 0 to 0.4.
    pub fn around(config: &Map<String, Value>) -> SearchSpace {
        let mut params = Vec::new();
        let number = |v: &Value| v.as_f64().filter(|x| *x > 0.0);
        if let Some(lr) = config.get("learning_rate").and_then(number) {
            params.push(log_uniform("learning_rate", lr / 5.0, lr * 5.0));
        }
        if let Some(wd) = config
            .get("optimizer")
            .and_then(|o| o.get("weight_decay"))
            .and_then(number)
        {
            params.push(log_uniform("optimizer.weight_decay", wd / 10.0, wd * 10.0));
        }
        if let Some(width) = width_choice(config) {
            params.push(width);
        }
        if let Some(loss) = loss_choice(config) {
            params.push(loss);
        }
        for key in ["p_rotation", "p_scale"] {
            if config.get("augment").and_then(|a| a.get(key)).is_some() {
                params.push(Param {
                    key: format!("augment.{key}"),
                    range: Range::Uniform {
                        low: 0.0,
                        high: 0.4,
                    },
                });
            }
        }
        SearchSpace { params }
    }

    /// Reads a bundle's `search_space.yaml`; `None` when it has none.
    pub fn read(bundle: &Path) -> Option<Result<SearchSpace, BundleError>> {
        let path = autoseg_datasets::Bundle::new(bundle).search_space();
        let text = autoseg_datasets::textfile::read_text(&path).ok()?;
        Some(
            autoseg_datasets::textfile::from_yaml::<SearchSpace>(&text)
                .map_err(|e| BundleError::invalid(&path, e.to_string()))
                .and_then(|s| s.checked().map_err(|m| BundleError::invalid(&path, m))),
        )
    }

    /// Writes `search_space.yaml` into a bundle, atomically.
    pub fn write(&self, bundle: &Path) -> Result<(), BundleError> {
        let path = autoseg_datasets::Bundle::new(bundle).search_space();
        let body = serde_yaml::to_string(self).expect("search spaces serialise");
        autoseg_datasets::fsutil::write_bytes_atomic(&path, format!("{HEADER}{body}").as_bytes())
            .map_err(|e| BundleError::io(&path, e))
    }

    /// The space if every range is usable, else what is wrong.
    fn checked(self) -> Result<SearchSpace, String> {
        for p in &self.params {
            let ok = match &p.range {
                Range::LogUniform { low, high } => *low > 0.0 && low <= high,
                Range::Uniform { low, high } => low.is_finite() && high.is_finite() && low <= high,
                Range::Choice { values } => !values.is_empty(),
            };
            if !ok {
                return Err(format!(
                    "{}: an empty range (log_uniform needs 0 < low <= high, choice a value)",
                    p.key
                ));
            }
        }
        Ok(self)
    }
}

fn log_uniform(key: &str, low: f64, high: f64) -> Param {
    Param {
        key: key.into(),
        range: Range::LogUniform { low, high },
    }
}

/// Dice + cross-entropy (the templates' loss) or Dice + focal with the same Dice options.
fn loss_choice(config: &Map<String, Value>) -> Option<Param> {
    let loss = config.get("loss")?.get("loss")?.as_object()?;
    if loss.get("name") != Some(&json!("dice_ce")) {
        return None;
    }
    let mut focal = loss.clone();
    focal.remove("lambda_ce");
    focal.insert("name".into(), json!("dice_focal"));
    Some(Param {
        key: "loss.loss".into(),
        range: Range::Choice {
            values: vec![Value::Object(loss.clone()), Value::Object(focal)],
        },
    })
}

/// Half or full network width, for the widths the network's configuration names.
fn width_choice(config: &Map<String, Value>) -> Option<Param> {
    let network = config.get("network")?;
    let halve = |v: &Value| v.as_u64().map(|w| json!((w / 2).max(1)));
    if let Some(filters) = network.get("filters").and_then(Value::as_array) {
        let half: Option<Vec<Value>> = filters.iter().map(halve).collect();
        return Some(Param {
            key: "network.filters".into(),
            range: Range::Choice {
                values: vec![json!(half?), json!(filters)],
            },
        });
    }
    let init = network.get("init_filters")?;
    Some(Param {
        key: "network.init_filters".into(),
        range: Range::Choice {
            values: vec![halve(init)?, init.clone()],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_space_surrounds_the_configuration_and_reads_back() {
        let config = json!({
            "learning_rate": 0.01,
            "optimizer": {"name": "sgd", "weight_decay": 3e-5},
            "network": {"name": "dynunet", "filters": [32, 64, 128]},
            "augment": {"p_rotation": 0.2, "p_scale": 0.2},
        });
        let space = SearchSpace::around(config.as_object().unwrap());
        let keys: Vec<&str> = space.params.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "learning_rate",
                "optimizer.weight_decay",
                "network.filters",
                "augment.p_rotation",
                "augment.p_scale"
            ]
        );
        assert_eq!(
            space.params[0].range,
            Range::LogUniform {
                low: 0.002,
                high: 0.05
            }
        );
        assert_eq!(
            space.params[2].range,
            Range::Choice {
                values: vec![json!([16, 32, 64]), json!([32, 64, 128])]
            }
        );
        let dir = tempfile::tempdir().unwrap();
        space.write(dir.path()).unwrap();
        assert_eq!(SearchSpace::read(dir.path()).unwrap().unwrap(), space);
    }

    #[test]
    fn a_bad_space_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SearchSpace::read(dir.path()).is_none());
        std::fs::write(
            autoseg_datasets::Bundle::new(dir.path()).search_space(),
            "params:\n- key: learning_rate\n  kind: log_uniform\n  low: 0\n  high: 1\n",
        )
        .unwrap();
        let e = SearchSpace::read(dir.path())
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("search_space.yaml") && e.contains("learning_rate"),
            "{e}"
        );
        std::fs::write(
            autoseg_datasets::Bundle::new(dir.path()).search_space(),
            "params:\n- key: x\n  kind: gaussian\n",
        )
        .unwrap();
        let e = SearchSpace::read(dir.path())
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("search_space.yaml"), "{e}");
    }
}

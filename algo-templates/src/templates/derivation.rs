//! Why each generated value is what it is: for every key a template sets, the rule it
//! followed and the statistics it read, and whether the user overrode it. Written to a
//! bundle's `derivation.yaml` and shown by `autoseg inspect`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bundle::BundleError;

/// One derived value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    /// The configuration key (dotted path).
    pub key: String,
    /// The value the template chose.
    pub value: Value,
    /// The rule, in words.
    pub rule: String,
    /// The statistics (or resources) it read, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Value>,
    /// The value a user set instead, and where (`--set`, the task config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden: Option<Override>,
}

/// A user's value replacing a template's choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The value set.
    pub value: Value,
    /// Where it was set.
    pub source: String,
}

/// Every derived value of a bundle, in the order the template derived them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Derivation {
    /// The template.
    pub template: String,
    /// The statistics file read (relative to the bundle: the work dir's).
    pub statistics: String,
    /// The values.
    pub values: Vec<Derived>,
}

impl Derivation {
    /// An empty derivation of `template`'s values.
    pub fn new(template: &str) -> Derivation {
        Derivation {
            template: template.to_string(),
            ..Derivation::default()
        }
    }

    /// Records a value and why (replacing an earlier record of the key); returns the value
    /// for the caller's use.
    pub fn record<T: Serialize + Clone>(
        &mut self,
        key: &str,
        value: T,
        rule: &str,
        inputs: &[(&str, Value)],
    ) -> T {
        self.values.retain(|d| d.key != key);
        self.values.push(Derived {
            key: key.to_string(),
            value: serde_json::to_value(value.clone()).expect("values serialise"),
            rule: rule.to_string(),
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            overridden: None,
        });
        value
    }

    /// The record of a key, if the template derived it.
    pub fn get(&self, key: &str) -> Option<&Derived> {
        self.values.iter().find(|d| d.key == key)
    }

    /// Notes that a user set `key` (a template's value, or a new one).
    pub fn overridden(&mut self, key: &str, value: Value, source: &str) {
        let note = Override {
            value,
            source: source.to_string(),
        };
        match self.values.iter_mut().find(|d| d.key == key) {
            Some(d) => d.overridden = Some(note),
            None => self.values.push(Derived {
                key: key.to_string(),
                value: Value::Null,
                rule: "not derived by the template".into(),
                inputs: BTreeMap::new(),
                overridden: Some(note),
            }),
        }
    }

    /// Writes `derivation.yaml` into a bundle, atomically.
    pub fn write(&self, bundle: &Path) -> Result<(), BundleError> {
        let path = autoseg_datasets::Bundle::new(bundle).derivation();
        let text = format!(
            "# Where each generated value came from (autoseg generate); editing this file \
             changes nothing.\n{}",
            serde_yaml::to_string(self).expect("derivations serialise")
        );
        autoseg_datasets::fsutil::write_bytes_atomic(&path, text.as_bytes())
            .map_err(|e| BundleError::Io { path, source: e })
    }

    /// Reads a bundle's `derivation.yaml`, if it has one.
    pub fn read(bundle: &Path) -> Option<Result<Derivation, BundleError>> {
        let path = autoseg_datasets::Bundle::new(bundle).derivation();
        let text = autoseg_datasets::textfile::read_text(&path).ok()?;
        Some(
            autoseg_datasets::textfile::from_yaml(&text).map_err(|e| BundleError::Invalid {
                path,
                reason: e.to_string(),
            }),
        )
    }
}

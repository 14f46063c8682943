//! User overrides of generated values: `--set key=value` on the command line, and keys of
//! the task config that name bundle settings (`num_epochs`, `learning_rate`, and
//! Auto3DSeg's `roi_size` for `patch_size`). Values are YAML (`patch_size=[64,64,32]`); a
//! `template:` prefix limits a setting to one template's bundles
//! (`dynunet:network.filters=[16,32,64,128]`). Each override is recorded in the bundle's
//! derivation.

use serde_json::{Map, Value};

use super::{Derivation, TemplateError};

/// One override: a dotted key path, its value, and where it was set.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The key (`optimizer.weight_decay`).
    pub key: String,
    /// The value.
    pub value: Value,
    /// Where it was set (`--set`, `task config`).
    pub source: String,
    /// The only template it applies to, if limited to one.
    pub template: Option<String>,
}

/// Task-config keys Auto3DSeg uses under another name.
const ALIASES: &[(&str, &str)] = &[("roi_size", "patch_size")];

impl Setting {
    /// Parses `key=value` (the value as YAML).
    pub fn parse(text: &str, source: &str) -> Result<Setting, TemplateError> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| TemplateError::Override {
                key: text.to_string(),
                reason: "expected key=value".into(),
            })?;
        let (template, key) = match key.split_once(':') {
            Some((t, k)) => (Some(t.trim().to_string()), k.trim()),
            None => (None, key.trim()),
        };
        let value: Value = serde_yaml::from_str(value).map_err(|e| TemplateError::Override {
            key: key.to_string(),
            reason: format!("the value is not YAML: {e}"),
        })?;
        Ok(Setting {
            key: canonical(key).to_string(),
            value,
            source: source.to_string(),
            template,
        })
    }

    /// Whether the setting applies to `template`'s bundles.
    pub fn applies_to(&self, template: &str) -> bool {
        self.template.as_deref().is_none_or(|t| t == template)
    }

    /// A task-config key as a setting, if it names one (`roi_size`, or any key the
    /// configuration has at its top level).
    pub fn from_task_key(key: &str, value: Value, config: &Map<String, Value>) -> Option<Setting> {
        let key = canonical(key);
        config.contains_key(key).then(|| Setting {
            key: key.to_string(),
            value,
            source: "task config".into(),
            template: None,
        })
    }
}

fn canonical(key: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |(_, name)| name)
}

/// Applies the settings for `derivation.template`'s bundles to a configuration, in order,
/// and records each.
pub fn apply(
    config: &mut Map<String, Value>,
    settings: &[Setting],
    derivation: &mut Derivation,
) -> Result<(), TemplateError> {
    let template = derivation.template.clone();
    for s in settings.iter().filter(|s| s.applies_to(&template)) {
        set_dotted(config, &s.key, s.value.clone())?;
        derivation.overridden(&s.key, s.value.clone(), &s.source);
    }
    Ok(())
}

/// Sets the value at a dotted key (`loss.loss.batch`), making the mappings on its way
/// that are missing; fails when one on the way is not a mapping.
pub fn set_dotted(
    config: &mut Map<String, Value>,
    key: &str,
    value: Value,
) -> Result<(), TemplateError> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, path) = parts.split_last().expect("split gives one part at least");
    let mut at = config;
    for (depth, part) in path.iter().enumerate() {
        let next = at
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        at = next
            .as_object_mut()
            .ok_or_else(|| TemplateError::Override {
                key: key.to_string(),
                reason: format!("`{}` is not a mapping", parts[..=depth].join(".")),
            })?;
    }
    at.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_replace_nested_values_and_are_recorded() {
        let mut config = json!({"optimizer": {"name": "sgd", "momentum": 0.99}, "num_epochs": 5})
            .as_object()
            .unwrap()
            .clone();
        let mut d = Derivation::default();
        d.record("num_epochs", 5, "a rule", &[]);
        let settings = [
            Setting::parse("optimizer.momentum=0.9", "--set").unwrap(),
            Setting::parse("roi_size=[32, 32, 16]", "--set").unwrap(),
            Setting::from_task_key("num_epochs", json!(7), &config).unwrap(),
        ];
        assert!(Setting::from_task_key("colour", json!(1), &config).is_none());
        apply(&mut config, &settings, &mut d).unwrap();
        assert_eq!(config["optimizer"]["momentum"], json!(0.9));
        assert_eq!(config["patch_size"], json!([32, 32, 16]));
        assert_eq!(config["num_epochs"], json!(7));
        let epochs = d.get("num_epochs").unwrap();
        assert_eq!(epochs.value, json!(5));
        assert_eq!(epochs.overridden.as_ref().unwrap().source, "task config");
        assert!(d.get("patch_size").unwrap().overridden.is_some());
        let only_other = Setting::parse("segresnet:num_epochs=9", "--set").unwrap();
        apply(&mut config, &[only_other], &mut d).unwrap();
        assert_eq!(config["num_epochs"], json!(7));
        d.template = "segresnet".into();
        let mine = Setting::parse("segresnet:num_epochs=9", "--set").unwrap();
        apply(&mut config, &[mine], &mut d).unwrap();
        assert_eq!(config["num_epochs"], json!(9));
        let bad = apply(
            &mut config,
            &[Setting::parse("num_epochs.x=1", "--set").unwrap()],
            &mut d,
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("`num_epochs` is not a mapping")
        );
        assert!(Setting::parse("novalue", "--set").is_err());
    }
}

//! A bundle's configuration YAML: parsing and validating never panics, and what validates
//! names sizes a machine can hold.

use autoseg_tuner::train::TrainConfig;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(serde_json::Value::Object(values)) =
            autoseg_datasets::textfile::from_yaml::<serde_json::Value>(text)
        else {
            return;
        };
        let _ = TrainConfig::complete(values);
    });
}

//! Every loss against MONAI 1.6.1's value on the same tensors (`fixtures/losses`, made by
//! `make_fixtures.py` with the peer). MONAI's arguments are translated into our bundle
//! YAML keys, so the test also covers how a bundle names a loss.

use std::path::Path;

use autoseg_datasets::regions::Decoding;
use autoseg_templates::{ComputeDevice, strict};
use autoseg_tuner::loss::{DeepSupervision, DeepSupervisionWeights, LossConfig, one_hot};
use burn::tensor::{Device, Int, Tensor};
use serde_json::{Map, Value, json};

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/losses/monai_losses.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn tensor(input: &Value, device: &Device) -> Tensor<5> {
    let shape: Vec<usize> = serde_json::from_value(input["shape"].clone()).unwrap();
    let values: Vec<f32> = serde_json::from_value(input["values"].clone()).unwrap();
    let shape: [usize; 5] = shape.try_into().unwrap();
    Tensor::<1>::from_floats(values.as_slice(), device).reshape(shape)
}

/// MONAI's constructor arguments as our configuration keys.
fn our_config(kind: &str, monai: &Map<String, Value>) -> Value {
    let mut config = Map::new();
    config.insert("name".into(), json!(kind));
    for (key, value) in monai {
        match key.as_str() {
            "softmax" | "sigmoid" => {
                if value == true {
                    config.insert("activation".into(), json!(key));
                }
            }
            "to_onehot_y" => {} // our targets are one-hot already
            "weight" => {
                config.insert("class_weights".into(), value.clone());
            }
            _ => {
                config.insert(key.clone(), value.clone());
            }
        }
    }
    if kind == "focal" {
        config.remove("activation");
    }
    Value::Object(config)
}

#[test]
fn losses_equal_monai_within_1e_5() {
    for device in ComputeDevice::available() {
        eprintln!("on {device}");
        losses_equal_monai_on(&device.burn_device());
    }
}

fn losses_equal_monai_on(device: &Device) {
    let data = fixture();
    let inputs = &data["inputs"];
    let logits = tensor(&inputs["logits"], device);
    let labels = tensor(&inputs["labels"], device).int();
    let one_hot_labels = one_hot(labels.clone(), 3);
    let multilabel = tensor(&inputs["multilabel"], device);
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 22);
    let mut checked = 0;
    for case in cases {
        let kind = case["kind"].as_str().unwrap();
        let monai = case["args"].as_object().unwrap();
        let want = case["value"].as_f64().unwrap();
        let target = match case["target"].as_str().unwrap() {
            "labels" => one_hot_labels.clone(),
            _ => multilabel.clone(),
        };
        let got = if kind == "deep_supervision" {
            let weights = match monai["weight_mode"].as_str().unwrap() {
                "exp" => DeepSupervisionWeights::MonaiExp,
                _ => DeepSupervisionWeights::Same,
            };
            let ds = DeepSupervision {
                loss: LossConfig::default(),
                weights,
            };
            let outputs = vec![logits.clone(), tensor(&inputs["logits_half"], device)];
            ds.forward(outputs, target, None)
        } else {
            let config: LossConfig = strict::from_value(our_config(kind, monai))
                .unwrap_or_else(|e| panic!("{kind} {monai:?}: {e}"));
            config.validate(3, Decoding::Argmax).unwrap();
            config.forward(logits.clone(), target, None)
        };
        let got = got.into_scalar::<f32>() as f64;
        let error = (got - want).abs() / want.abs().max(1e-12);
        assert!(
            error < 1e-5,
            "{kind} {monai:?}: ours {got}, MONAI {want} (relative error {error:e})"
        );
        checked += 1;
    }
    assert_eq!(checked, 22);
}

#[test]
fn one_hot_marks_exactly_one_class_per_voxel() {
    let device = Device::flex();
    let labels = Tensor::<1, Int>::from_ints([0, 2, 1, 2], &device).reshape([1, 1, 2, 2, 1]);
    let encoded = one_hot(labels, 3).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(
        encoded,
        vec![1., 0., 0., 0., 0., 0., 1., 0., 0., 1., 0., 1.]
    );
}

#[test]
fn class_weights_of_the_wrong_length_are_refused() {
    let config: LossConfig =
        strict::from_value(json!({"name": "dice_ce", "class_weights": [1.0, 2.0]})).unwrap();
    let err = config
        .validate(3, Decoding::Argmax)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dice_ce") && err.contains("2 values for 3"),
        "{err}"
    );
    let unknown = strict::from_value::<LossConfig>(json!({"name": "dice", "smoth_nr": 1.0}));
    assert_eq!(
        unknown.unwrap_err(),
        "unknown key smoth_nr",
        "a misspelt key must not be ignored"
    );
}

#[test]
fn halving_weights_sum_to_one_and_halve() {
    let w = DeepSupervisionWeights::Halving.weights(4);
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    for pair in w.windows(2) {
        assert!((pair[1] / pair[0] - 0.5).abs() < 1e-12);
    }
    assert_eq!(
        DeepSupervisionWeights::MonaiExp.weights(6),
        vec![1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625]
    );
}

//! The ignore label in the losses: what the network predicts on unannotated voxels changes
//! no loss, and a mask that covers every voxel changes nothing at all.

use autoseg_templates::strict;
use autoseg_tuner::loss::{DeepSupervision, LossConfig, one_hot};
use burn::tensor::{Device, Int, Tensor};
use serde_json::json;

const CLASSES: usize = 3;
const DIMS: [usize; 5] = [2, CLASSES, 6, 5, 4];
const IGNORE: i64 = 255;

/// A small deterministic pseudo-random sequence in [-2, 2).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

/// Labels 0..CLASSES with every third voxel unannotated.
fn labels() -> Vec<i64> {
    let n = DIMS[0] * DIMS[2] * DIMS[3] * DIMS[4];
    (0..n)
        .map(|i| {
            if i % 3 == 0 {
                IGNORE
            } else {
                (i as i64 / 2) % 3
            }
        })
        .collect()
}

fn every_loss() -> Vec<LossConfig> {
    [
        json!({"name": "dice"}),
        json!({"name": "dice_ce", "include_background": false, "batch": true}),
        json!({"name": "dice_ce", "class_weights": [0.2, 1.0, 2.0]}),
        json!({"name": "dice_ce", "activation": "sigmoid"}),
        json!({"name": "dice_focal", "activation": "sigmoid", "alpha": 0.25}),
        json!({"name": "focal", "use_softmax": true}),
        json!({"name": "focal"}),
        json!({"name": "tversky", "alpha": 0.3, "beta": 0.7}),
        json!({"name": "generalized_dice"}),
        json!({"name": "dice_bce", "activation": "sigmoid", "batch": true}),
    ]
    .into_iter()
    .map(|config| strict::from_value(config).unwrap())
    .collect()
}

struct Case {
    target: Tensor<5>,
    labelled: Tensor<5>,
    /// Where a voxel is unannotated, as a float mask broadcast over the channels.
    ignored: Tensor<5>,
}

fn case(device: &Device) -> Case {
    let [b, _, x, y, z] = DIMS;
    let labels = Tensor::<1, Int>::from_ints(labels().as_slice(), device).reshape([b, 1, x, y, z]);
    let labelled = labels.clone().not_equal_elem(IGNORE).float();
    Case {
        target: one_hot(labels, CLASSES),
        ignored: labelled
            .clone()
            .neg()
            .add_scalar(1.0)
            .repeat_dim(1, CLASSES),
        labelled,
    }
}

fn logits(seed: u64, device: &Device) -> Tensor<5> {
    let n = DIMS.iter().product();
    Tensor::<1>::from_floats(values(n, seed).as_slice(), device).reshape(DIMS)
}

#[test]
fn predictions_on_ignored_voxels_change_no_loss() {
    let device = Device::default();
    let c = case(&device);
    let base = logits(1, &device);
    // The same logits on annotated voxels, others elsewhere.
    let other = base.clone() + c.ignored.clone() * logits(2, &device).mul_scalar(3.0);
    for loss in every_loss() {
        let a = loss.forward(base.clone(), c.target.clone(), Some(c.labelled.clone()));
        let b = loss.forward(other.clone(), c.target.clone(), Some(c.labelled.clone()));
        let (a, b) = (a.into_scalar::<f32>(), b.into_scalar::<f32>());
        assert!(a.is_finite(), "{}: {a}", loss.name());
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "{}: {a} became {b} when only ignored voxels changed",
            loss.name()
        );
        // Without the mask the same change does move the loss: the test has teeth. (Softmax
        // focal alone weighs each voxel by its target, all zeros on ignored voxels.)
        if matches!(loss, LossConfig::Focal(ref f) if f.use_softmax) {
            continue;
        }
        let unmasked_a = loss.forward(base.clone(), c.target.clone(), None);
        let unmasked_b = loss.forward(other.clone(), c.target.clone(), None);
        assert!(
            (unmasked_a.into_scalar::<f32>() - unmasked_b.into_scalar::<f32>()).abs() > 1e-4,
            "{}: unmasked loss did not see the change",
            loss.name()
        );
    }
}

#[test]
fn a_mask_of_every_voxel_is_no_mask() {
    let device = Device::default();
    let [b, _, x, y, z] = DIMS;
    let labels: Vec<i64> = labels().iter().map(|&l| l % 3).collect();
    let labels = Tensor::<1, Int>::from_ints(labels.as_slice(), &device).reshape([b, 1, x, y, z]);
    let all = labels.clone().ones_like().float();
    let target = one_hot(labels, CLASSES);
    let logits = logits(3, &device);
    for loss in every_loss() {
        let plain = loss.forward(logits.clone(), target.clone(), None);
        let masked = loss.forward(logits.clone(), target.clone(), Some(all.clone()));
        let (plain, masked) = (plain.into_scalar::<f32>(), masked.into_scalar::<f32>());
        assert!(
            (plain - masked).abs() <= 1e-5 * plain.abs().max(1.0),
            "{}: {plain} unmasked, {masked} under a full mask",
            loss.name()
        );
    }
}

#[test]
fn deep_supervision_masks_every_level() {
    let device = Device::default();
    let c = case(&device);
    let ds: DeepSupervision =
        strict::from_value(json!({"loss": {"name": "dice_ce", "batch": true}})).unwrap();
    let [b, k, ..] = DIMS;
    let coarse = |seed| {
        Tensor::<1>::from_floats(values(b * k * 3 * 3 * 2, seed).as_slice(), &device)
            .reshape([b, k, 3, 3, 2])
    };
    let base = logits(4, &device);
    let other = base.clone() + c.ignored.clone() * logits(5, &device);
    let a = ds.forward(
        vec![base, coarse(6)],
        c.target.clone(),
        Some(c.labelled.clone()),
    );
    let b = ds.forward(vec![other, coarse(6)], c.target, Some(c.labelled));
    let (a, b) = (a.into_scalar::<f32>(), b.into_scalar::<f32>());
    assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} became {b}");
}

//! Region targets and their loss: one binary channel per region from a class map, and
//! `dice_bce` (nnU-Net's loss for regions) as sigmoid Dice plus PyTorch's
//! `BCEWithLogitsLoss`, computed here by hand; losses that suit exclusive classes only are
//! refused for regions.

use autoseg_datasets::regions::Decoding;
use autoseg_templates::strict;
use autoseg_tuner::loss::{LossConfig, region_targets};
use burn::tensor::{Device, Int, Tensor};
use serde_json::json;

#[test]
fn region_targets_merge_classes_per_region() {
    let device = Device::flex();
    let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 255, 2].as_slice(), &device)
        .reshape([1, 1, 6, 1, 1]);
    // Regions over class indices: {1, 2, 3} and {3}.
    let target = region_targets(labels, &[vec![1, 2, 3], vec![3]]);
    let got = target.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(
        got,
        [[0., 1., 1., 1., 0., 1.], [0., 0., 0., 1., 0., 0.]].concat()
    );
}

#[test]
fn dice_bce_is_sigmoid_dice_plus_binary_cross_entropy() {
    let device = Device::flex();
    let logits = [-2.0f32, 0.5, 1.5, -0.3, 3.0, -1.0, 0.2, 2.2];
    let target = [0.0f32, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    let shape = [1, 2, 4, 1, 1];
    let x = Tensor::<1>::from_floats(logits.as_slice(), &device).reshape(shape);
    let t = Tensor::<1>::from_floats(target.as_slice(), &device).reshape(shape);
    let config: LossConfig = strict::from_value(json!({"name": "dice_bce",
        "activation": "sigmoid", "smooth_nr": 0.0, "smooth_dr": 1e-5}))
    .unwrap();
    let got = config.forward(x, t, None).into_scalar::<f32>() as f64;

    let sigmoid = |v: f32| 1.0 / (1.0 + (-v as f64).exp());
    let bce: f64 = (logits.iter().zip(&target))
        .map(|(&x, &t)| -(t as f64 * sigmoid(x).ln() + (1.0 - t as f64) * (1.0 - sigmoid(x)).ln()))
        .sum::<f64>()
        / 8.0;
    let dice = |c: usize| {
        let (p, t) = (&logits[c * 4..c * 4 + 4], &target[c * 4..c * 4 + 4]);
        let inter: f64 = p.iter().zip(t).map(|(&p, &t)| sigmoid(p) * t as f64).sum();
        let sum: f64 = p.iter().map(|&p| sigmoid(p)).sum::<f64>() + t.iter().sum::<f32>() as f64;
        1.0 - 2.0 * inter / (sum + 1e-5)
    };
    let want = bce + (dice(0) + dice(1)) / 2.0;
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
}

#[test]
fn regions_refuse_softmax_losses_by_name() {
    let parse = |v| strict::from_value::<LossConfig>(v).unwrap();
    let softmax_ce = parse(json!({"name": "dice_ce", "activation": "sigmoid"}));
    let err = softmax_ce
        .validate(3, Decoding::Regions)
        .unwrap_err()
        .to_string();
    assert!(err.contains("use `dice_bce`"), "{err}");
    let softmax_dice = parse(json!({"name": "dice"}));
    let err = softmax_dice
        .validate(3, Decoding::Regions)
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be sigmoid"), "{err}");
    let bce_softmax = parse(json!({"name": "dice_bce"}));
    assert!(bce_softmax.validate(3, Decoding::Argmax).is_err());
    let fine = parse(json!({"name": "dice_bce", "activation": "sigmoid"}));
    fine.validate(3, Decoding::Regions).unwrap();
}

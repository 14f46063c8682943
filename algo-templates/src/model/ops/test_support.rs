//! What the kernels' tests share: reading values, comparing within a tolerance.

use burn::tensor::Tensor;

/// The values of a tensor, in order.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Within `tolerance` of the largest reference value (or of 1).
pub fn assert_close_within(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert_eq!(got.len(), want.len(), "{what}");
    assert!(
        worst <= tolerance * scale,
        "{what}: max error {worst} (scale {scale})"
    );
}

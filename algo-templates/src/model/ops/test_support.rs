//! What the kernels' tests share: reading values, comparing within a tolerance.

use burn::tensor::Tensor;

/// The values of a tensor, in order.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// The largest absolute difference between two equally long slices.
pub fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// Within `tolerance` of the largest reference value (or of 1).
pub fn assert_close_within(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    assert_eq!(got.len(), want.len(), "{what}");
    let worst = max_difference(got, want);
    assert!(
        worst <= tolerance * scale,
        "{what}: max error {worst} (scale {scale})"
    );
}

//! The direct kernels against the im2col path.

use burn::tensor::Shape;
use burn::tensor::ops::ConvOptions;

use super::*;
use crate::ops::conv::flex::{im2col_forward, im2col_weight_grad};
use crate::ops::test_support::assert_close_within;

/// Deterministic values in -1..1.
fn drawn(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

/// Channels in and out, input, kernel, padding.
type Case = ([usize; 2], [usize; 3], [usize; 3], [usize; 3]);

/// Output channels not always a multiple of 8, columns not always of 3; odd sizes,
/// DynUNet's flat 3x3x1, a padding wider than the kernel's reach, a one-voxel input, rows
/// wider than a chunk, slices longer than a stretch, the deepest level's many channels.
const CASES: [Case; 8] = [
    ([3, 11], [9, 7, 6], [3; 3], [1; 3]),
    ([2, 8], [5, 6, 20], [3, 3, 1], [1, 1, 0]),
    ([1, 16], [4, 5, 53], [3; 3], [0; 3]),
    ([5, 3], [3, 3, 3], [3; 3], [2; 3]),
    ([4, 9], [1, 1, 1], [3; 3], [1; 3]),
    ([1, 2], [6, 4, 5], [2, 1, 2], [0; 3]),
    ([2, 5], [3, 12, 50], [3; 3], [1; 3]),
    ([67, 40], [5, 7, 5], [3; 3], [1; 3]),
];

#[test]
fn equal_the_im2col_path_on_every_isa_the_cpu_has() {
    for kernels in kernels::ALL.into_iter().filter(|k| (k.supported)()) {
        check_against_im2col(kernels, |v| v);
    }
}

/// On operands that bf16 holds exactly, the bf16 kernels' products are exact and their
/// sums f32's: the im2col path's values, to rounding.
#[test]
fn bf16_kernels_equal_the_im2col_path_on_bf16_values() {
    let Some(kernels) = kernels::detected_bf16() else {
        eprintln!("skipped: this CPU has no AVX-512 BF16");
        return;
    };
    check_against_im2col(kernels, |v| half::bf16::from_f32(v).to_f32());
}

/// `kernels` against the im2col path on every case, operands passed through `round`.
fn check_against_im2col<X: Operand, D: Operand>(kernels: &Kernels<X, D>, round: fn(f32) -> f32) {
    for (i, ([ci, co], input, kernel, padding)) in CASES.into_iter().enumerate() {
        let out: [usize; 3] = std::array::from_fn(|a| input[a] + 2 * padding[a] + 1 - kernel[a]);
        let x = Shape::from([2, ci, input[0], input[1], input[2]]);
        let y = Shape::from([2, co, out[0], out[1], out[2]]);
        let w = Shape::from([co, ci, kernel[0], kernel[1], kernel[2]]);
        let g = Geometry::new(&x, &y, &w, &ConvOptions::new([1; 3], padding, [1; 3], 1));
        let drawn = |len, seed| drawn(len, seed).into_iter().map(round).collect::<Vec<_>>();
        let xs = drawn(x.num_elements(), i as u32);
        let ws = drawn(w.num_elements(), 77 + i as u32);
        let dys = drawn(y.num_elements(), 99 + i as u32);
        let what = format!("{}, case {i}", kernels.isa);
        assert_close_within(
            &forward(&g, &xs, &ws, kernels),
            &im2col_forward(&g, &xs, &ws),
            1e-5,
            &what,
        );
        assert_close_within(
            &weight_grad(&g, &xs, &dys, kernels),
            &im2col_weight_grad(&g, &xs, &dys),
            1e-5,
            &what,
        );
    }
}

#[test]
fn unit_strides_with_taps_take_the_widest_isa_and_others_the_im2col_path() {
    let shape = |c: usize, s: [usize; 3]| Shape::from([1, c, s[0], s[1], s[2]]);
    let geometry = |kernel: [usize; 3], stride: [usize; 3]| {
        let out = std::array::from_fn(|a| (8 + 2 - kernel[a]) / stride[a] + 1);
        let options = ConvOptions::new(stride, [1; 3], [1; 3], 1);
        Geometry::new(
            &shape(4, [8; 3]),
            &shape(8, out),
            &shape(8, kernel),
            &options,
        )
    };
    let widest = kernels::ALL.into_iter().find(|k| (k.supported)());
    let taken = kernels_for(&geometry([3; 3], [1; 3])).map(|k| k.isa);
    if std::env::var_os("AUTOSEG_MAX_CPU_ISA").is_none() {
        assert_eq!(taken, widest.map(|k| k.isa));
    }
    assert!(kernels_for(&geometry([3; 3], [2; 3])).is_none());
    assert!(kernels_for(&geometry([1; 3], [1; 3])).is_none());
}

#[test]
fn the_isa_cap_allows_its_isa_and_narrower_ones() {
    let isas = |cap| kernels::allowed(cap).map(|ks| ks.iter().map(|k| k.isa).collect::<Vec<_>>());
    assert_eq!(isas(""), Some(vec!["avx512", "avx2"]));
    assert_eq!(isas("avx512_bf16"), Some(vec!["avx512", "avx2"]));
    assert_eq!(isas("AVX512"), Some(vec!["avx512", "avx2"]));
    assert_eq!(isas("avx2"), Some(vec!["avx2"]));
    assert_eq!(isas("none"), Some(vec![]));
    assert_eq!(isas("sse"), None);
}

//! The fused kernels on burn-flex: rayon over the (instance, channel) slices, two passes
//! each (statistics, then output), accumulating in f64 over [`LANES`] partial sums (one
//! running sum made every value wait for the previous add, and kept the loops scalar: the
//! Task04 plan's first-level norm took 43 ms forward on 2 cores, 24 ms now).

use burn::backend::TensorMetadata;
use burn::backend::{Flex, tensor::FloatTensor};
use burn::tensor::Shape;
use rayon::prelude::*;

use super::Activation;
use super::kernels::{Forward, Gradients, NormActKernels, Saved, Statistics};
use crate::ops::flex_slices::{contiguous, tensor, values};

impl NormActKernels for Flex {
    fn norm_act_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        activation: Activation,
    ) -> Forward<Self> {
        let shape = x.shape();
        let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
        let (xs, gamma, beta) = (values(&x), values(&gamma), values(&beta));
        let (channels, len) = (shape[1], slice_len(&shape));
        let activation = activation.piecewise();
        let mut y = vec![0f32; xs.len()];
        let mut mean = vec![0f32; xs.len() / len];
        let mut rstd = vec![0f32; xs.len() / len];
        y.par_chunks_mut(len)
            .zip(xs.par_chunks(len))
            .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
            .enumerate()
            .for_each(|(s, ((out, input), (mu, r)))| {
                let (m, var) = moments(input);
                let inv = 1.0 / (var + eps).sqrt();
                (*mu, *r) = (m as f32, inv as f32);
                let c = s % channels;
                let scale = gamma[c] as f64 * inv;
                let (scale, shift) = (scale as f32, (beta[c] as f64 - m * scale) as f32);
                for (o, &v) in out.iter_mut().zip(input) {
                    *o = activation.apply(v * scale + shift);
                }
            });
        let statistics = Statistics {
            mean: tensor(mean, [xs.len() / len].into()),
            rstd: tensor(rstd, [xs.len() / len].into()),
        };
        (tensor(y, shape), statistics)
    }

    fn norm_act_backward(saved: Saved<Self>, dy: FloatTensor<Self>) -> Gradients<Self> {
        let shape = saved.x.shape();
        let (channels, len) = (shape[1], slice_len(&shape));
        let (x, y, dy) = (contiguous(saved.x), contiguous(saved.y), contiguous(dy));
        let (gamma, mean, rstd) = (
            contiguous(saved.gamma),
            contiguous(saved.statistics.mean),
            contiguous(saved.statistics.rstd),
        );
        let (xs, ys, dys) = (values(&x), values(&y), values(&dy));
        let (gamma, mean, rstd) = (values(&gamma), values(&mean), values(&rstd));
        let act = saved.activation.piecewise();
        let mut dx = vec![0f32; xs.len()];
        // Per slice: (sum dz, sum dz * xhat).
        let mut sums = vec![(0f64, 0f64); xs.len() / len];
        dx.par_chunks_mut(len)
            .zip(
                xs.par_chunks(len)
                    .zip(ys.par_chunks(len))
                    .zip(dys.par_chunks(len)),
            )
            .zip(sums.par_iter_mut())
            .enumerate()
            .for_each(|(s, ((dx, ((x, y), dy)), sum))| {
                let (mu, r) = (mean[s], rstd[s] as f64);
                let (dz_sum, dz_xc) = lane_sums(x.iter().zip(y).zip(dy), |((&x, &y), &g)| {
                    let dz = (g * act.slope_at_output(y)) as f64;
                    (dz, dz * (x - mu) as f64)
                });
                let dz_xhat = dz_xc * r;
                *sum = (dz_sum, dz_xhat);
                // dx = a dz + b (x - mu) + c0, from the module docs' formula.
                let n = len as f64;
                let a = gamma[s % channels] as f64 * r;
                let b = (-a * r * dz_xhat / n) as f32;
                let c0 = (-a * dz_sum / n) as f32;
                let a = a as f32;
                for (((d, &x), &y), &g) in dx.iter_mut().zip(x).zip(y).zip(dy) {
                    *d = a * g * act.slope_at_output(y) + b * (x - mu) + c0;
                }
            });
        let mut dgamma = vec![0f64; channels];
        let mut dbeta = vec![0f64; channels];
        for (s, (dz_sum, dz_xhat)) in sums.into_iter().enumerate() {
            dbeta[s % channels] += dz_sum;
            dgamma[s % channels] += dz_xhat;
        }
        let narrow = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect::<Vec<_>>();
        [
            tensor(dx, shape),
            tensor(narrow(dgamma), [channels].into()),
            tensor(narrow(dbeta), [channels].into()),
        ]
    }
}

/// The number of values in one (instance, channel) slice.
fn slice_len(shape: &Shape) -> usize {
    shape[2..].iter().product()
}

/// Mean and biased variance of a slice, in one pass shifted by its first value (so a large
/// mean does not cancel the variance's digits).
fn moments(values: &[f32]) -> (f64, f64) {
    let shift = values[0] as f64;
    let (s1, s2) = lane_sums(values.iter(), |&v| {
        let d = v as f64 - shift;
        (d, d * d)
    });
    let n = values.len() as f64;
    let mean = s1 / n;
    (shift + mean, (s2 / n - mean * mean).max(0.0))
}

/// Independent partial sums per pair of sums: enough to cover an add's latency.
const LANES: usize = 16;

/// The two sums of `terms` over `items`, each kept in [`LANES`] partial sums added
/// together at the end, so that the compiler can vectorise the loop.
#[inline(always)]
fn lane_sums<T>(
    mut items: impl ExactSizeIterator<Item = T>,
    terms: impl Fn(T) -> (f64, f64),
) -> (f64, f64) {
    let (mut a, mut b) = ([0f64; LANES], [0f64; LANES]);
    while items.len() >= LANES {
        for lane in 0..LANES {
            let (x, y) = terms(items.next().expect("LANES items are left"));
            a[lane] += x;
            b[lane] += y;
        }
    }
    for (lane, item) in items.enumerate() {
        let (x, y) = terms(item);
        a[lane] += x;
        b[lane] += y;
    }
    (a.iter().sum(), b.iter().sum())
}

//! Window logits to probabilities, as a [`Decoding`] reads them: a softmax over classes, or a
//! sigmoid per region; on the tensors' device ([`activate`]) or on host values
//! ([`activate_host`]). flex takes a softmax over the channel axis by transposing the window
//! to channels-last and back (two thirds of a 105-class prediction's time, measured), where
//! the host pass reads each channel's run of voxels in place: on flex the softmax is the
//! host's.

use autoseg_datasets::regions::Decoding;
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use super::accumulate::host_values;

/// Probabilities from logits `[n, channels, ...]`, on their device.
pub fn activate(decoding: Decoding, logits: Tensor<5>) -> Tensor<5> {
    let device = logits.device();
    match decoding {
        Decoding::Argmax if device.clone().inner() == Device::flex() => {
            let dims = logits.dims();
            let mut values = host_values(logits);
            activate_host(decoding, &mut values, dims[1], dims[2..].iter().product());
            Tensor::from_data(TensorData::new(values, dims), &device)
        }
        Decoding::Argmax => softmax(logits, 1),
        Decoding::Regions => sigmoid(logits),
    }
}

/// Voxels a softmax block covers: one block's channels stay in the L2 cache.
const BLOCK: usize = 1024;

/// [`activate`] in place on host values `[n, channels, voxels]` (voxels fastest).
pub fn activate_host(decoding: Decoding, values: &mut [f32], channels: usize, voxels: usize) {
    if values.is_empty() {
        return;
    }
    match decoding {
        Decoding::Regions => values
            .par_iter_mut()
            .for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        Decoding::Argmax => {
            let mut blocks: Vec<Vec<&mut [f32]>> = Vec::new();
            for window in values.chunks_mut(channels * voxels) {
                let first = blocks.len();
                for channel in window.chunks_mut(voxels) {
                    for (b, run) in channel.chunks_mut(BLOCK).enumerate() {
                        if blocks.len() <= first + b {
                            blocks.push(Vec::with_capacity(channels));
                        }
                        blocks[first + b].push(run);
                    }
                }
            }
            blocks.into_par_iter().for_each(softmax_block);
        }
    }
}

/// The softmax across `runs` (one per channel, the same voxels each), voxel by voxel.
fn softmax_block(mut runs: Vec<&mut [f32]>) {
    let n = runs[0].len();
    let mut max = vec![f32::NEG_INFINITY; n];
    for run in &runs {
        max.iter_mut()
            .zip(run.iter())
            .for_each(|(m, &v)| *m = m.max(v));
    }
    let mut sum = vec![0f32; n];
    for run in runs.iter_mut() {
        for ((v, s), m) in run.iter_mut().zip(sum.iter_mut()).zip(&max) {
            *v = (*v - m).exp();
            *s += *v;
        }
    }
    sum.iter_mut().for_each(|s| *s = 1.0 / *s);
    for run in runs.iter_mut() {
        run.iter_mut().zip(&sum).for_each(|(v, s)| *v *= s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_activation_equals_burns_softmax_and_sigmoid() {
        let device = Device::flex();
        // Two windows of 3 channels over 2 x 3 x 400 voxels: blocks end mid-channel.
        let shape = [2, 3, 2, 3, 400];
        let n: usize = shape.iter().product();
        let logits: Vec<f32> = (0..n)
            .map(|i| ((i * 37) % 101) as f32 / 7.0 - 7.0)
            .collect();
        for decoding in [Decoding::Argmax, Decoding::Regions] {
            let tensor = || Tensor::<1>::from_floats(logits.as_slice(), &device).reshape(shape);
            let burns = match decoding {
                Decoding::Argmax => softmax(tensor(), 1),
                Decoding::Regions => sigmoid(tensor()),
            };
            let want = host_values(burns);
            let mut host = logits.clone();
            activate_host(decoding, &mut host, 3, 2 * 3 * 400);
            let through_activate = host_values(activate(decoding, tensor()));
            for got in [host, through_activate] {
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-6, "{decoding:?}: {worst}");
            }
        }
    }
}

//! A network's windows as [`SlabStream`](super::SlabStream) takes them ([`WindowForward`]):
//! its features once per test-time mirroring pass, then its pointwise head, activation and
//! delivery [`HEAD_SLICES`] x-slices at a time, so a window's logits of every class are never
//! whole. Prediction and training's validation run networks through it alike.

use std::ops::Range;

use autoseg_datasets::regions::Decoding;
use burn::tensor::{Tensor, s};

use super::accumulate::host_values;
use super::{WindowForward, activate_host};
use crate::networks::Network;

/// x-slices of a window whose logits of every class go through the head at once: at 105
/// classes and a 96^3 window, 8 slices are 31 MB where the whole window's logits are 371 MB.
const HEAD_SLICES: usize = 8;

/// `network`'s probabilities as `decoding` reads them, averaged over every subset of
/// `mirror_axes` (spatial axes, 0-2) flipped.
pub struct HeadSlices<'a> {
    pub network: &'a Network,
    pub decoding: Decoding,
    pub mirror_axes: &'a [usize],
}

impl WindowForward for HeadSlices<'_> {
    fn passes(&self) -> usize {
        mirror_passes(self.mirror_axes)
    }

    /// The features are flipped back before the head (which commutes with flips), so each
    /// slice lands where it belongs.
    fn run(&self, x: Tensor<5>, deliver: &mut dyn FnMut(usize, Range<usize>, &[f32])) {
        let [n, _, rx, ry, rz] = x.dims();
        let axes = self.mirror_axes;
        for pass in 0..self.passes() {
            let features = self.network.features(mirrored(x.clone(), axes, pass));
            let features = mirrored(features, axes, pass);
            for start in (0..rx).step_by(HEAD_SLICES) {
                let xs = start..(start + HEAD_SLICES).min(rx);
                let logits = self
                    .network
                    .head(features.clone().slice(s![.., .., xs.clone()]));
                let classes = logits.dims()[1];
                let mut values = host_values(logits);
                activate_host(self.decoding, &mut values, classes, xs.len() * ry * rz);
                for (i, window) in values.chunks_exact(values.len() / n).enumerate() {
                    deliver(i, xs.clone(), window);
                }
            }
        }
    }
}

/// Test-time mirroring's passes over `axes`: every subset of them.
pub fn mirror_passes(axes: &[usize]) -> usize {
    1 << axes.len()
}

/// `t` (`[n, c, x, y, z]`) flipped along the `axes` in subset `pass` (bit `i` for `axes[i]`).
pub fn mirrored(mut t: Tensor<5>, axes: &[usize], pass: usize) -> Tensor<5> {
    for (i, &axis) in axes.iter().enumerate() {
        if pass >> i & 1 == 1 {
            t = t.flip([axis + 2]);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::activate;
    use crate::networks::NetworkConfig;
    use crate::networks::dynunet::DynUNetConfig;
    use burn::tensor::Device;

    #[test]
    fn head_slices_deliver_the_mirrored_probabilities_of_whole_windows() {
        let device = Device::flex();
        let network = NetworkConfig::Dynunet(DynUNetConfig {
            kernel_sizes: vec![[3; 3]; 3],
            strides: vec![[1; 3], [2; 3], [2; 3]],
            filters: Some(vec![4, 8, 16]),
            ..DynUNetConfig::new(1, 3)
        })
        .init_seeded(&device, 1)
        .unwrap();
        // x = 20: two runs of 8 slices and one of 4.
        let shape = [2, 1, 20, 8, 4];
        let n: usize = shape.iter().product();
        let input: Vec<f32> = (0..n).map(|i| ((i * 31) % 17) as f32 / 17.0).collect();
        let x = Tensor::<1>::from_floats(input.as_slice(), &device).reshape(shape);
        let axes = [0, 2];
        for decoding in [Decoding::Argmax, Decoding::Regions] {
            let passes = mirror_passes(&axes);
            let want: Vec<f32> = (0..passes)
                .map(|pass| {
                    let logits = network.forward(mirrored(x.clone(), &axes, pass));
                    host_values(mirrored(activate(decoding, logits), &axes, pass))
                })
                .reduce(|a, b| a.iter().zip(&b).map(|(a, b)| a + b).collect())
                .unwrap()
                .into_iter()
                .map(|v| v / passes as f32)
                .collect();
            let forward = HeadSlices {
                network: &network,
                decoding,
                mirror_axes: &axes,
            };
            let mut got = vec![0f32; want.len()];
            let plane = 8 * 4;
            forward.run(x.clone(), &mut |i, xs, values| {
                let channel = values.len() / 3;
                for (c, run) in values.chunks_exact(channel).enumerate() {
                    let at = ((i * 3 + c) * 20 + xs.start) * plane;
                    for (g, v) in got[at..at + channel].iter_mut().zip(run) {
                        *g += v / passes as f32;
                    }
                }
            });
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "{decoding:?}: {worst}");
        }
    }
}

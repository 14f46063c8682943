//! The sliding window streamed along z: windows go in z by z (all those starting at one z
//! at a time), and once every window reaching a run of slices has been added, those slices
//! are final; they are read where they lie, in the running sums, which then move on. So the
//! sums span one window's depth (and one slice more, which a consumer interpolating
//! between slices may still read), not the volume. With several forwards (ensemble members
//! that share a grid and a window), each adds its windows into the same sums: the slices
//! read are their mean.
//!
//! The sums live on the host (the kernels' [`WindowAccumulator`] over the band, in its
//! reversed axes), whatever the network's device, in f16 as nnU-Net keeps its sums: at 105
//! classes a 96-deep band over a 512 x 512 CT at 1.5 mm takes 1.5 GB so, 3 GB in f32.
//! Networks deliver their windows a run of x-slices at a time ([`WindowForward`]), so no
//! window's every class is whole either.

use std::borrow::Cow;
use std::ops::Range;

use autoseg_datasets::regions::Decoding;
use autoseg_datasets::transforms::restore::NetworkSlices;
use autoseg_kernels::blend::{Window, WindowAccumulator};
use burn::tensor::{Device, Tensor};
use half::f16;

use super::{Blend, SlidingWindow, crop, pad, window_starts};
use autoseg_kernels::blend::{gaussian_importance_map, representable_in_f16};

/// One volume's windows, blended a z start at a time; its final slices are
/// [`NetworkSlices`].
pub struct SlabStream<'a> {
    window: &'a SlidingWindow,
    /// The image, zero-padded to at least a window.
    source: Vec<f32>,
    channels: usize,
    dims: [usize; 3],
    padded: [usize; 3],
    /// Window origins grouped by their z start, ascending.
    groups: Vec<(usize, Vec<[usize; 3]>)>,
    next: usize,
    /// Sums over `[band_start, band_start + roi z + 1)`.
    band: WindowAccumulator<f16>,
    band_start: usize,
    /// Slices final so far: `0..arrived`.
    arrived: usize,
    importance: Vec<f32>,
}

impl<'a> SlabStream<'a> {
    /// A stream over `image` (`channels` x `dims`, z fastest) for forwards with `outputs`
    /// channels.
    pub fn new(
        window: &'a SlidingWindow,
        image: Vec<f32>,
        channels: usize,
        dims: [usize; 3],
        outputs: usize,
    ) -> SlabStream<'a> {
        let roi = window.roi;
        let padded: [usize; 3] = std::array::from_fn(|a| dims[a].max(roi[a]));
        let source = if padded == dims {
            image
        } else {
            pad(&image, channels, dims, padded)
        };
        let starts: Vec<Vec<usize>> = (0..3)
            .map(|a| window_starts(padded[a], roi[a], window.overlap))
            .collect();
        let groups = starts[2]
            .iter()
            .map(|&z| {
                let mut origins = Vec::new();
                for &x in &starts[0] {
                    for &y in &starts[1] {
                        origins.push([x, y, z]);
                    }
                }
                (z, origins)
            })
            .collect();
        let [rx, ry, rz] = roi;
        let importance = match window.blend {
            Blend::Gaussian => representable_in_f16(&gaussian_importance_map([rz, ry, rx], 0.125)),
            Blend::Constant => vec![1.0; rx * ry * rz],
        };
        SlabStream {
            window,
            source,
            channels,
            dims,
            padded,
            groups,
            next: 0,
            band: WindowAccumulator::new([rz + 1, padded[1], padded[0]], outputs),
            band_start: 0,
            arrived: 0,
            importance,
        }
    }

    /// Adds every window of the next z start through each of `forwards`, letting go of the
    /// slices before the one just ahead of it; the slices no later window reaches become
    /// final. `false` once the volume is done.
    pub fn advance(&mut self, forwards: &[&dyn WindowForward], device: &Device) -> bool {
        let Some((z, origins)) = self.groups.get(self.next).cloned() else {
            return false;
        };
        self.next += 1;
        let keep_from = z.saturating_sub(1).max(self.band_start);
        self.band.advance(keep_from - self.band_start);
        self.band_start = keep_from;
        for forward in forwards {
            self.add_group(&origins, *forward, device);
        }
        let end = match self.groups.get(self.next) {
            Some(&(next_z, _)) => next_z,
            None => self.padded[2],
        };
        self.arrived = end.min(self.dims[2]);
        true
    }

    fn add_group(&mut self, origins: &[[usize; 3]], forward: &dyn WindowForward, device: &Device) {
        let [rx, ry, rz] = self.window.roi;
        // Each of several passes weighs its share; one pass takes the map as it is.
        let importance: Cow<[f32]> = match forward.passes() {
            1 => Cow::Borrowed(&self.importance),
            passes => Cow::Owned(self.importance.iter().map(|w| w / passes as f32).collect()),
        };
        let plane = ry * rz;
        for batch in origins.chunks(self.window.batch.max(1)) {
            let mut input = Vec::new();
            for origin in batch {
                input.extend(crop(
                    &self.source,
                    self.channels,
                    self.padded,
                    *origin,
                    self.window.roi,
                ));
            }
            let x = Tensor::<1>::from_floats(input.as_slice(), device).reshape([
                batch.len(),
                self.channels,
                rx,
                ry,
                rz,
            ]);
            forward.run(x, &mut |i, xs, values| {
                let [x, y, z] = batch[i];
                self.band.add(&Window {
                    origin: [z - self.band_start, y, x + xs.start],
                    size: [rz, ry, xs.len()],
                    values,
                    importance: &importance[xs.start * plane..xs.end * plane],
                });
            });
        }
    }
}

/// The class of every voxel of `image` (`channels` x `dims`, z fastest) on its own grid,
/// decoded from `forward`'s `outputs` channels a final slice at a time: no step holds every
/// class of the volume (training's validation, on the network's grid).
#[allow(clippy::too_many_arguments)]
pub fn streamed_classes(
    window: &SlidingWindow,
    image: Vec<f32>,
    channels: usize,
    dims: [usize; 3],
    outputs: usize,
    decoding: Decoding,
    forward: &dyn WindowForward,
    device: &Device,
) -> Vec<u8> {
    let [nx, ny, nz] = dims;
    let mut stream = SlabStream::new(window, image, channels, dims, outputs);
    let mut classes = vec![0u8; nx * ny * nz];
    let mut plane = Vec::new();
    let mut done = 0;
    while stream.advance(&[forward], device) {
        for z in done..stream.arrived() {
            let mut decoder = decoding.start(nx * ny);
            for k in 0..outputs {
                stream.slice(k, z, &mut plane);
                decoder.offer(k, &plane);
            }
            for (i, class) in decoder.classes().into_iter().enumerate() {
                classes[((i % nx) * ny + i / nx) * nz + z] = class;
            }
        }
        done = stream.arrived();
    }
    classes
}

/// A network as [`SlabStream`] runs it: a batch of windows in, their probabilities out a
/// run of x-slices at a time (so a window's logits of every class need never be whole).
pub trait WindowForward {
    /// How many times [`Self::run`] delivers each voxel of a window (test-time mirroring's
    /// passes): each delivery weighs `1 / passes`, so the band holds their mean.
    fn passes(&self) -> usize;

    /// Runs `x` (`[n, channels, roi]`), handing `deliver(i, xs, values)` the probabilities
    /// of window `i` over its x-slices `xs` (`[outputs, xs, y, z]`, z fastest); every slice
    /// [`Self::passes`] times.
    fn run(&self, x: Tensor<5>, deliver: &mut dyn FnMut(usize, Range<usize>, &[f32]));
}

impl NetworkSlices for SlabStream<'_> {
    fn arrived(&self) -> usize {
        self.arrived
    }

    /// # Panics
    /// When slice `z` is not final yet, or was let go.
    fn slice(&self, class: usize, z: usize, plane: &mut Vec<f32>) {
        assert!(
            z < self.arrived && z >= self.band_start,
            "slice {z} is not held (final below {}, held from {})",
            self.arrived,
            self.band_start
        );
        let mut rows = Vec::new();
        self.band.slice(class, z - self.band_start, &mut rows);
        let [nx, ny, _] = self.dims;
        let py = self.padded[1];
        plane.clear();
        plane.resize(nx * ny, 0.0);
        for x in 0..nx {
            for y in 0..ny {
                plane[y * nx + x] = rows[x * py + y];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Accumulation;
    use super::super::accumulate::host_values;
    use super::*;
    use burn::tensor::s;

    /// Delivers each window `passes` times, `slices` x-slices at a time.
    struct Delivered<F> {
        forward: F,
        slices: usize,
        passes: usize,
    }

    impl<F: Fn(Tensor<5>) -> Tensor<5>> WindowForward for Delivered<F> {
        fn passes(&self) -> usize {
            self.passes
        }

        fn run(&self, x: Tensor<5>, deliver: &mut dyn FnMut(usize, Range<usize>, &[f32])) {
            let [n, _, rx, ..] = x.dims();
            let out = (self.forward)(x);
            for _ in 0..self.passes {
                for start in (0..rx).step_by(self.slices) {
                    let xs = start..(start + self.slices).min(rx);
                    let part = host_values(out.clone().slice(s![.., .., xs.clone()]));
                    for (i, window) in part.chunks_exact(part.len() / n).enumerate() {
                        deliver(i, xs.clone(), window);
                    }
                }
            }
        }
    }

    /// A "network" whose outputs depend on the window's content and position: blending it
    /// whole and streamed must agree.
    fn forward(x: Tensor<5>) -> Tensor<5> {
        let shifted = x.clone().mul_scalar(0.5).add_scalar(1.0);
        Tensor::cat(vec![x.clone().tanh(), shifted, x.exp()], 1)
    }

    #[test]
    fn streamed_classes_are_the_whole_blends_but_for_near_ties() {
        let device = Device::flex();
        let window = SlidingWindow {
            roi: [8, 8, 16],
            overlap: 0.5,
            batch: 2,
            blend: Blend::Gaussian,
            accumulation: Accumulation::Host,
        };
        let dims = [13, 11, 37];
        let n: usize = dims.iter().product();
        let image: Vec<f32> = (0..2 * n).map(|i| ((i * 37) % 23) as f32 / 23.0).collect();
        for decoding in [Decoding::Argmax, Decoding::Regions] {
            // Shifted so that some regions' sigmoids fall under a half and some rise over.
            let logits = |x: Tensor<5>| forward(x).sub_scalar(1.5);
            let probabilities = |x: Tensor<5>| super::super::activate(decoding, logits(x));
            // Two input channels: six outputs.
            let whole = window.blend(&image, 2, dims, 6, &device, probabilities);
            let want = decoding.classes(&whole, 6);
            let delivered = Delivered {
                forward: probabilities,
                slices: 3,
                passes: 1,
            };
            let got = streamed_classes(
                &window,
                image.clone(),
                2,
                dims,
                6,
                decoding,
                &delivered,
                &device,
            );
            let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert!(differ * 1000 <= n, "{decoding:?}: {differ} of {n} differ");
            assert!(want.iter().any(|&c| c != want[0]), "more than one class");
        }
    }

    #[test]
    fn slabs_put_together_are_the_whole_blend_delivered_whole_in_slices_or_twice_and_for_a_mean_of_two()
     {
        let device = Device::flex();
        for (dims, roi, overlap) in [
            ([13, 11, 37], [8, 8, 16], 0.5),
            ([9, 7, 5], [8, 8, 8], 0.5),
            ([10, 9, 40], [6, 5, 12], 0.75),
        ] {
            let window = SlidingWindow {
                roi,
                overlap,
                batch: 3,
                blend: Blend::Gaussian,
                accumulation: Accumulation::Host,
            };
            let n: usize = dims.iter().product();
            let image: Vec<f32> = (0..2 * n).map(|i| ((i * 37) % 23) as f32 / 23.0).collect();
            let scaled = |x: Tensor<5>| forward(x).mul_scalar(3.0);
            let whole = window.blend(&image, 2, dims, 6, &device, forward);
            let whole_scaled = window.blend(&image, 2, dims, 6, &device, scaled);
            let mean: Vec<f32> = whole
                .iter()
                .zip(&whole_scaled)
                .map(|(a, b)| (a + b) / 2.0)
                .collect();
            let whole_once = Delivered {
                forward,
                slices: roi[0],
                passes: 1,
            };
            let sliced_twice = Delivered {
                forward,
                slices: 3,
                passes: 2,
            };
            let scaled_sliced = Delivered {
                forward: scaled,
                slices: 4,
                passes: 1,
            };
            for (forwards, want) in [
                (vec![&whole_once as &dyn WindowForward], &whole),
                (vec![&sliced_twice as &dyn WindowForward], &whole),
                (
                    vec![&whole_once as &dyn WindowForward, &scaled_sliced],
                    &mean,
                ),
            ] {
                let mut stream = SlabStream::new(&window, image.clone(), 2, dims, 6);
                let mut got = vec![f32::NAN; 6 * n];
                let mut covered = 0;
                let mut plane = Vec::new();
                while stream.advance(&forwards, &device) {
                    for z in covered..stream.arrived() {
                        for c in 0..6 {
                            stream.slice(c, z, &mut plane);
                            for (i, &v) in plane.iter().enumerate() {
                                let (x, y) = (i % dims[0], i / dims[0]);
                                got[((c * dims[0] + x) * dims[1] + y) * dims[2] + z] = v;
                            }
                        }
                    }
                    covered = stream.arrived();
                }
                assert_eq!(covered, dims[2]);
                let worst = got
                    .iter()
                    .zip(want.iter())
                    .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                    .fold(0f32, f32::max);
                // The band sums in f16: each addition rounds to 2^-11 of the sum, and a voxel
                // takes as many as the windows reaching it (1 / (1 - overlap) per axis) times
                // the deliveries of each.
                let additions = (1.0 / (1.0 - overlap as f32)).ceil().powi(3) * 2.0;
                assert!(
                    worst < additions * 2f32.powi(-11),
                    "{dims:?} {roi:?}: {worst}"
                );
            }
        }
    }
}

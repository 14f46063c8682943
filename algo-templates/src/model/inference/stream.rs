//! The sliding window streamed along z: windows go in z by z (all those starting at one z
//! at a time), and once every window reaching a run of slices has been added, those slices
//! are final; they are read where they lie, in the running sums, which then move on. So the
//! sums span one window's depth (and one slice more, which a consumer interpolating
//! between slices may still read), not the volume. With several forwards (ensemble members
//! that share a grid and a window), each adds its windows into the same sums: the slices
//! read are their mean.
//!
//! The sums live on the host (the kernels' [`WindowAccumulator`] over the band, in its
//! reversed axes), whatever the network's device.

use autoseg_datasets::transforms::restore::NetworkSlices;
use autoseg_kernels::blend::WindowAccumulator;
use burn::tensor::{Device, Tensor};

use super::{Blend, SlidingWindow, crop, pad, window_starts};
use autoseg_kernels::blend::gaussian_importance_map;

/// One volume's windows, blended a z start at a time; its final slices are
/// [`NetworkSlices`].
pub struct SlabStream<'a> {
    window: &'a SlidingWindow,
    /// The image, zero-padded to at least a window.
    source: Vec<f32>,
    channels: usize,
    dims: [usize; 3],
    padded: [usize; 3],
    outputs: usize,
    /// Window origins grouped by their z start, ascending.
    groups: Vec<(usize, Vec<[usize; 3]>)>,
    next: usize,
    /// Sums over `[band_start, band_start + roi z + 1)`.
    band: WindowAccumulator,
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
            Blend::Gaussian => gaussian_importance_map([rz, ry, rx], 0.125),
            Blend::Constant => vec![1.0; rx * ry * rz],
        };
        SlabStream {
            window,
            source,
            channels,
            dims,
            padded,
            outputs,
            groups,
            next: 0,
            band: WindowAccumulator::new([rz + 1, padded[1], padded[0]], outputs),
            band_start: 0,
            arrived: 0,
            importance,
        }
    }

    /// Adds every window of the next z start through each of `forwards` (which map
    /// `[n, channels, roi]` to `[n, outputs, roi]`), letting go of the slices before the one
    /// just ahead of it; the slices no later window reaches become final. `false` once the
    /// volume is done.
    pub fn advance(
        &mut self,
        forwards: &[&dyn Fn(Tensor<5>) -> Tensor<5>],
        device: &Device,
    ) -> bool {
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

    fn add_group(
        &mut self,
        origins: &[[usize; 3]],
        forward: &dyn Fn(Tensor<5>) -> Tensor<5>,
        device: &Device,
    ) {
        let roi = self.window.roi;
        for batch in origins.chunks(self.window.batch.max(1)) {
            let mut input = Vec::new();
            for origin in batch {
                input.extend(crop(&self.source, self.channels, self.padded, *origin, roi));
            }
            let x = Tensor::<1>::from_floats(input.as_slice(), device).reshape([
                batch.len(),
                self.channels,
                roi[0],
                roi[1],
                roi[2],
            ]);
            let in_band: Vec<[usize; 3]> = batch
                .iter()
                .map(|&[x, y, z]| [x, y, z - self.band_start])
                .collect();
            super::accumulate::add_windows(
                &mut self.band,
                &in_band,
                forward(x),
                roi,
                self.outputs,
                &self.importance,
            );
        }
    }
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
    use super::*;

    /// A "network" whose outputs depend on the window's content and position: blending it
    /// whole and streamed must agree.
    fn forward(x: Tensor<5>) -> Tensor<5> {
        let shifted = x.clone().mul_scalar(0.5).add_scalar(1.0);
        Tensor::cat(vec![x.clone().tanh(), shifted, x.exp()], 1)
    }

    #[test]
    fn slabs_put_together_are_the_whole_blend_for_one_forward_and_for_a_mean_of_two() {
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
            for (forwards, want) in [
                (vec![&forward as &dyn Fn(Tensor<5>) -> Tensor<5>], &whole),
                (vec![&forward as &dyn Fn(_) -> _, &scaled], &mean),
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
                assert!(worst < 1e-5, "{dims:?} {roi:?}: {worst}");
            }
        }
    }
}

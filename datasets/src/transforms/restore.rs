//! Probabilities on the network's grid brought back to the image's RAS grid one z-plane at
//! a time, as [`super::preprocess::restore_class`] brings a whole class back: resampled
//! (linear, nearest across a separate axis) from the prepared grid to the crop and pasted
//! in, with [`Decoding::outside`] outside the crop. The network's slices
//! arrive in z order (from a streamed sliding window); each RAS plane leaves as soon as
//! the slices it reads have arrived, and slices no later plane reads are dropped, so memory
//! holds a few planes of every class, never the volume.

use autoseg_kernels::resample::{Order, PlaneResampler, image_orders, separate_axis};

use super::preprocess::PreparedGrid;
use crate::regions::Decoding;

/// Where the network's slices come from, in z order: a streamed sliding window.
pub trait NetworkSlices {
    /// Slices final so far: `0..arrived`.
    fn arrived(&self) -> usize;
    /// Slice `z` (final, and not yet let go) of class `class` as a plane over the prepared
    /// grid's x and y, x fastest, into `plane`.
    fn slice(&self, class: usize, z: usize, plane: &mut Vec<f32>);
}

/// A prepared grid's class probabilities turned into RAS planes as its slices arrive.
pub struct RasPlanes {
    grid: PreparedGrid,
    classes: usize,
    /// What fills the planes outside the crop.
    decoding: Decoding,
    resampler: PlaneResampler,
    /// The next RAS plane to give.
    next: usize,
}

impl RasPlanes {
    /// Planes of `classes` channels for an image prepared on `grid`, decoded by `decoding`
    /// (which says what is certain outside the crop).
    pub fn new(grid: &PreparedGrid, classes: usize, decoding: Decoding) -> RasPlanes {
        let separate = separate_axis(grid.ras_spacing, grid.spacing);
        let orders = image_orders(Order::Linear, separate);
        RasPlanes {
            grid: *grid,
            classes,
            decoding,
            resampler: PlaneResampler::new(grid.dims, grid.cropped_dims(), orders),
            next: 0,
        }
    }

    /// The RAS grid's planes in all.
    pub fn planes(&self) -> usize {
        self.grid.ras_dims[2]
    }

    /// The next RAS plane (`[classes, x * y]`, x fastest), or `None` while it waits for
    /// slices not yet fed (or when every plane has been given).
    pub fn next_plane(&mut self, source: &dyn NetworkSlices) -> Option<Vec<f32>> {
        let z = self.next;
        if z >= self.planes() {
            return None;
        }
        let [rx, ry, _] = self.grid.ras_dims;
        let mut plane = vec![0f32; self.classes * rx * ry];
        for (c, channel) in plane.chunks_exact_mut(rx * ry).enumerate() {
            channel.fill(self.decoding.outside(c));
        }
        let [cz0, cz1] = self.grid.crop[2];
        if (cz0..cz1).contains(&z) {
            let (zi, zw) = self.resampler.z_taps(z - cz0);
            if zi[1] >= source.arrived() {
                return None;
            }
            self.paste(&mut plane, source, zi, zw);
        }
        self.next += 1;
        Some(plane)
    }

    /// Resamples the crop's plane of every class from network slices `zi` and pastes it
    /// into the RAS `plane`.
    fn paste(&self, plane: &mut [f32], source: &dyn NetworkSlices, zi: [usize; 2], zw: [f32; 2]) {
        let [rx, ry, _] = self.grid.ras_dims;
        let [cx, cy, _] = self.grid.cropped_dims();
        let mut cropped = vec![0f32; cx * cy];
        let mut inputs = [Vec::new(), Vec::new()];
        for (c, out) in plane.chunks_exact_mut(rx * ry).enumerate() {
            for (input, &z) in inputs.iter_mut().zip(&zi) {
                source.slice(c, z, input);
            }
            self.resampler
                .plane([&inputs[0], &inputs[1]], zw, &mut cropped);
            for (y, row) in cropped.chunks_exact(cx).enumerate() {
                let at = (y + self.grid.crop[1][0]) * rx + self.grid.crop[0][0];
                out[at..at + cx].copy_from_slice(row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::preprocess::restore_class;
    use super::*;

    /// Whole probabilities (`[classes, x, y, z]`, z fastest), of which `arrived` slices
    /// have.
    struct Slices<'a> {
        probabilities: &'a [f32],
        grid: PreparedGrid,
        arrived: usize,
    }

    impl NetworkSlices for Slices<'_> {
        fn arrived(&self) -> usize {
            self.arrived
        }
        fn slice(&self, class: usize, z: usize, plane: &mut Vec<f32>) {
            assert!(z < self.arrived, "slice {z} read before it arrived");
            let [nx, ny, nz] = self.grid.dims;
            plane.clear();
            for y in 0..ny {
                for x in 0..nx {
                    plane.push(self.probabilities[class * nx * ny * nz + (x * ny + y) * nz + z]);
                }
            }
        }
    }

    #[test]
    fn planes_as_slices_arrive_equal_each_class_restored_whole() {
        // A 5x4x6 prepared grid from a 7x6x9 crop of a 9x8x12 RAS grid, thick in z.
        let grid = PreparedGrid {
            dims: [5, 4, 6],
            spacing: [1.4, 1.5, 3.0],
            crop: [[1, 8], [2, 8], [2, 11]],
            ras_dims: [9, 8, 12],
            ras_spacing: [1.0, 1.0, 2.0],
        };
        let classes = 3;
        let n: usize = grid.dims.iter().product();
        let probabilities: Vec<f32> = (0..classes * n)
            .map(|i| ((i * 31) % 17) as f32 / 17.0)
            .collect();
        for decoding in [Decoding::Argmax, Decoding::Regions] {
            let mut planes = RasPlanes::new(&grid, classes, decoding);
            let mut got = vec![Vec::new(); classes];
            let mut source = Slices {
                probabilities: &probabilities,
                grid,
                arrived: 0,
            };
            for arrived in [2, 5, 6] {
                source.arrived = arrived;
                while let Some(plane) = planes.next_plane(&source) {
                    let area = grid.ras_dims[0] * grid.ras_dims[1];
                    for (c, part) in plane.chunks_exact(area).enumerate() {
                        got[c].extend_from_slice(part);
                    }
                }
            }
            assert!(planes.next_plane(&source).is_none());
            for (c, got) in got.iter().enumerate() {
                let want = restore_class(&probabilities, c, decoding, &grid);
                assert_eq!(got.len(), want.len(), "class {c}: every plane given");
                assert_eq!(got, &want, "class {c}");
            }
        }
    }
}

//! One pass over an image for the figures that need only each voxel's sign and finiteness:
//! how many voxels are NaN or infinite, MONAI's per-channel crop (the y/z box of voxels > 0)
//! and nnU-Net's crop (the box of voxels != 0 in any channel).
//!
//! Each row (an x run) is summarised by branch-free loops the compiler vectorises (nnU-Net's
//! crop by the data layer's [`NonzeroBox`], row by row), so the three figures cost one read of
//! the volume instead of three, and a row of background costs no per-voxel branch.

use autoseg_datasets::{NonzeroBox, Volume};

/// What the scan found.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// Voxels (over all channels) that are NaN or infinite.
    pub non_finite: usize,
    /// Per channel: the inclusive y and z ranges of the rows holding a voxel > 0 (`None` when
    /// no voxel is > 0).
    pub positive_rows: Vec<Option<[[usize; 2]; 2]>>,
    /// Per axis, the half-open range `[lo, hi)` of voxels != 0 in any channel; the whole grid
    /// when every voxel is 0, as nnU-Net keeps it (what [`Volume::nonzero_box`] gives).
    pub nonzero_box: [[usize; 2]; 3],
}

impl Scan {
    /// Scans every channel of `image` (x fastest within a channel).
    pub fn of(image: &Volume) -> Scan {
        let [nx, ny, _] = image.dims();
        let mut non_finite = 0;
        // Per channel, the y and z extents of rows with a voxel > 0.
        let mut positive = vec![[Extent::default(); 2]; image.channels()];
        let mut nonzero = NonzeroBox::new();
        for c in 0..image.channels() {
            for (r, row) in image.channel(c).chunks_exact(nx.max(1)).enumerate() {
                let flags = RowFlags::of(row);
                non_finite += flags.non_finite as usize;
                let (y, z) = (r % ny, r / ny);
                if flags.positive {
                    positive[c][0].add(y);
                    positive[c][1].add(z);
                }
                nonzero.add_row(row, y, z);
            }
        }
        Scan {
            non_finite,
            positive_rows: positive
                .iter()
                .map(|[y, z]| (!y.is_empty()).then_some([[y.lo, y.hi], [z.lo, z.hi]]))
                .collect(),
            nonzero_box: nonzero.finish(image.dims()),
        }
    }
}

/// A row's summary.
struct RowFlags {
    positive: bool,
    non_finite: u32,
}

impl RowFlags {
    #[inline]
    fn of(row: &[f32]) -> RowFlags {
        const EXPONENT: u32 = 0x7f80_0000;
        let (mut positive, mut non_finite) = (0u32, 0u32);
        for v in row {
            positive |= u32::from(*v > 0.0);
            non_finite += u32::from(v.to_bits() & EXPONENT == EXPONENT);
        }
        RowFlags {
            positive: positive != 0,
            non_finite,
        }
    }
}

/// The smallest and largest coordinate met along one axis (inclusive).
#[derive(Debug, Clone, Copy)]
struct Extent {
    lo: usize,
    hi: usize,
}

impl Default for Extent {
    fn default() -> Self {
        Extent {
            lo: usize::MAX,
            hi: 0,
        }
    }
}

impl Extent {
    fn add(&mut self, at: usize) {
        (self.lo, self.hi) = (self.lo.min(at), self.hi.max(at));
    }

    fn is_empty(&self) -> bool {
        self.lo == usize::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoseg_datasets::rng::Rng;
    use autoseg_datasets::{Affine, Geometry};

    fn volume(dims: [usize; 3], channels: usize, value: impl FnMut(usize) -> f32) -> Volume {
        let geometry = Geometry {
            dims,
            affine: Affine::IDENTITY,
        };
        let n = dims.iter().product::<usize>() * channels;
        Volume::new(geometry, channels, (0..n).map(value).collect())
    }

    #[test]
    fn the_scan_equals_the_obvious_loops() {
        let dims = [37, 6, 5];
        let mut rng = Rng::new(5);
        // Mostly 0 and -0.0 (neither counts as non-zero), some negatives and positives, in
        // two channels with their own boxes, and a few NaN and infinite voxels.
        let image = volume(dims, 2, |i| match rng.below(40) {
            0 => 1.5,
            1 => -2.0,
            2 if i % 7 == 0 => f32::NAN,
            3 if i % 5 == 0 => f32::NEG_INFINITY,
            4..=19 => -0.0,
            _ => 0.0,
        });
        let scan = Scan::of(&image);
        let bad = image.data().iter().filter(|v| !v.is_finite()).count();
        assert!(bad > 0);
        assert_eq!(scan.non_finite, bad);
        let [nx, ny, _] = dims;
        let at = |i: usize| [i % nx, (i / nx) % ny, i / (nx * ny)];
        let nonzero: Vec<[usize; 3]> = (0..image.data().len())
            .filter(|&i| image.data()[i] != 0.0)
            .map(|i| at(i % (nx * ny * dims[2])))
            .collect();
        let nonzero_box: [[usize; 2]; 3] = std::array::from_fn(|a| {
            let along = nonzero.iter().map(|p| p[a]);
            [along.clone().min().unwrap(), along.max().unwrap() + 1]
        });
        assert_eq!(scan.nonzero_box, nonzero_box);
        assert_eq!(image.nonzero_box(), nonzero_box);
        for c in 0..2 {
            let positive: Vec<(usize, usize)> = (0..image.channel(c).len())
                .filter(|&i| image.channel(c)[i] > 0.0)
                .map(|i| ((i / nx) % ny, i / (nx * ny)))
                .collect();
            let extent = |pick: fn(&(usize, usize)) -> usize| {
                let values = positive.iter().map(pick);
                [values.clone().min().unwrap(), values.max().unwrap()]
            };
            assert_eq!(
                scan.positive_rows[c],
                Some([extent(|p| p.0), extent(|p| p.1)])
            );
        }
    }

    #[test]
    fn an_empty_image_keeps_the_whole_grid_and_no_crop() {
        let scan = Scan::of(&volume([4, 3, 2], 1, |_| -0.0));
        assert_eq!(scan.nonzero_box, [[0, 4], [0, 3], [0, 2]]);
        assert_eq!(scan.positive_rows, vec![None]);
        assert_eq!(scan.non_finite, 0);
    }
}

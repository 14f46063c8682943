//! Edge-preserving smoothing: the bilateral filter, exact (brute force over a window) and fast
//! (the bilateral grid of Paris & Durand / Chen et al.: splat every voxel into a coarse grid
//! over space and intensity, blur the grid with a Gaussian, read it back by quadrilinear
//! interpolation).
//!
//! The filter: out(p) = Σ_q Gs(|p − q|) Gr(I(p) − I(q)) I(q) / Σ_q Gs Gr, with Gaussian spatial
//! (sigma in voxels) and range (sigma in intensity units) kernels.

use rayon::prelude::*;

use crate::grid::neighbour;

/// The two widths of the filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BilateralSigmas {
    /// Spatial sigma, in voxels.
    pub spatial: f64,
    /// Range sigma, in intensity units.
    pub range: f64,
}

/// The exact filter over a window of ±ceil(3 sigma) voxels: the reference for the grid.
pub fn bilateral_exact(data: &[f32], dims: [usize; 3], sigmas: BilateralSigmas) -> Vec<f32> {
    let [nx, ny, _] = dims;
    let r = (3.0 * sigmas.spatial).ceil() as isize;
    let (ss, sr) = (2.0 * sigmas.spatial.powi(2), 2.0 * sigmas.range.powi(2));
    (0..data.len())
        .into_par_iter()
        .map(|i| {
            let (x, y, z) = (
                (i % nx) as isize,
                ((i / nx) % ny) as isize,
                (i / (nx * ny)) as isize,
            );
            let centre = data[i] as f64;
            let (mut sum, mut weight) = (0.0, 0.0);
            for dz in -r..=r {
                for dy in -r..=r {
                    for dx in -r..=r {
                        let Some(j) = neighbour(dims, [x, y, z], [dx, dy, dz]) else {
                            continue;
                        };
                        let v = data[j] as f64;
                        let d2 = (dx * dx + dy * dy + dz * dz) as f64;
                        let w = (-d2 / ss - (v - centre).powi(2) / sr).exp();
                        sum += w * v;
                        weight += w;
                    }
                }
            }
            (sum / weight) as f32
        })
        .collect()
}

/// The bilateral grid: cells of one spatial sigma and one range sigma, a [1 4 6 4 1]/16 blur
/// (a Gaussian of one cell) along each of the four axes, quadrilinear slicing.
pub fn bilateral_grid(data: &[f32], dims: [usize; 3], sigmas: BilateralSigmas) -> Vec<f32> {
    cross_bilateral_grid(data, data, dims, sigmas)
}

/// [`bilateral_grid`] with the range kernel taken from `guide` rather than from `values`
/// (a joint or cross bilateral filter: smooths `values` without crossing `guide`'s edges).
pub fn cross_bilateral_grid(
    values: &[f32],
    guide: &[f32],
    dims: [usize; 3],
    sigmas: BilateralSigmas,
) -> Vec<f32> {
    assert_eq!(
        values.len(),
        guide.len(),
        "values and guide of different sizes"
    );
    let layout = GridLayout::new(guide, dims, sigmas);
    let (mut sum, mut count) = layout.splat(values, guide);
    for axis in 0..4 {
        blur_axis(&mut sum, layout.g, axis);
        blur_axis(&mut count, layout.g, axis);
    }
    layout.slice(values, guide, &sum, &count)
}

/// Where the grid's cells lie: one spatial sigma by one range sigma, two cells of padding on
/// every side. The CPU and CUDA paths share it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GridLayout {
    pub dims: [usize; 3],
    /// Cells along x, y, z and intensity.
    pub g: [usize; 4],
    /// The guide's smallest value (intensity cell 0 + PAD).
    pub lo: f32,
    pub sigmas: BilateralSigmas,
}

/// Cells of padding on each side of the grid.
pub(crate) const PAD: usize = 2;

impl GridLayout {
    pub fn new(guide: &[f32], dims: [usize; 3], sigmas: BilateralSigmas) -> GridLayout {
        let (lo, hi) = guide
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        let size = |n: usize, sigma: f64| {
            ((n.saturating_sub(1)) as f64 / sigma).ceil() as usize + 1 + 2 * PAD
        };
        let g = [
            size(dims[0], sigmas.spatial),
            size(dims[1], sigmas.spatial),
            size(dims[2], sigmas.spatial),
            size(((hi - lo) as f64 / sigmas.range).ceil() as usize + 1, 1.0),
        ];
        GridLayout {
            dims,
            g,
            lo,
            sigmas,
        }
    }

    pub fn cells(&self) -> usize {
        self.g.iter().product()
    }

    /// Fractional grid coordinates of voxel `i` with guide value `v`.
    fn coordinates(&self, i: usize, v: f32) -> [f64; 4] {
        let [nx, ny, _] = self.dims;
        let cell = |v: f64, sigma: f64| v / sigma + PAD as f64;
        [
            cell((i % nx) as f64, self.sigmas.spatial),
            cell(((i / nx) % ny) as f64, self.sigmas.spatial),
            cell((i / (nx * ny)) as f64, self.sigmas.spatial),
            cell((v - self.lo) as f64, self.sigmas.range),
        ]
    }

    fn index(&self, c: [usize; 4]) -> usize {
        ((c[3] * self.g[2] + c[2]) * self.g[1] + c[1]) * self.g[0] + c[0]
    }

    /// Each voxel's value and a count of 1 into its nearest cell.
    fn splat(&self, values: &[f32], guide: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (mut sum, mut count) = (vec![0f32; self.cells()], vec![0f32; self.cells()]);
        for (i, &v) in guide.iter().enumerate() {
            let c = self.index(self.coordinates(i, v).map(|a| a.round() as usize));
            sum[c] += values[i];
            count[c] += 1.0;
        }
        (sum, count)
    }

    /// Quadrilinear interpolation of the blurred grid at each voxel's (position, intensity).
    fn slice(&self, values: &[f32], guide: &[f32], sum: &[f32], count: &[f32]) -> Vec<f32> {
        guide
            .par_iter()
            .enumerate()
            .map(|(i, &v)| {
                let at = self.coordinates(i, v);
                let base = at.map(|a| a.floor() as usize);
                let frac: [f64; 4] = std::array::from_fn(|a| at[a] - base[a] as f64);
                let (mut s, mut w) = (0.0f64, 0.0f64);
                for corner in 0..16usize {
                    let mut weight = 1.0;
                    let mut c = base;
                    for a in 0..4 {
                        if corner >> a & 1 == 1 {
                            c[a] += 1;
                            weight *= frac[a];
                        } else {
                            weight *= 1.0 - frac[a];
                        }
                    }
                    s += weight * sum[self.index(c)] as f64;
                    w += weight * count[self.index(c)] as f64;
                }
                if w > 0.0 { (s / w) as f32 } else { values[i] }
            })
            .collect()
    }
}

/// Blurs the grid along one of its four axes with [1 4 6 4 1] / 16 (zero outside).
fn blur_axis(grid: &mut [f32], g: [usize; 4], axis: usize) {
    let stride: usize = g[..axis].iter().product();
    let n = g[axis];
    let copy = grid.to_vec();
    const TAPS: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];
    grid.par_iter_mut().enumerate().for_each(|(i, out)| {
        let k = (i / stride) % n;
        let mut acc = 0.0;
        for (t, w) in TAPS.iter().enumerate() {
            let j = k as isize + t as isize - 2;
            if j >= 0 && (j as usize) < n {
                acc += w * copy[i - k * stride + j as usize * stride];
            }
        }
        *out = acc;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Lcg;

    /// Two flat regions (0 and 100) split along x, plus noise of sd about 5.
    fn step_volume(dims: [usize; 3]) -> Vec<f32> {
        let mut rng = Lcg(21);
        (0..dims.iter().product::<usize>())
            .map(|i| {
                let base = if i % dims[0] < dims[0] / 2 {
                    0.0
                } else {
                    100.0
                };
                base + ((rng.next_unit() - 0.5) * 17.0) as f32
            })
            .collect()
    }

    #[test]
    fn the_grid_approximates_the_exact_filter_and_both_keep_the_edge() {
        let dims = [24, 16, 12];
        let data = step_volume(dims);
        let sigmas = BilateralSigmas {
            spatial: 2.0,
            range: 15.0,
        };
        let exact = bilateral_exact(&data, dims, sigmas);
        let fast = bilateral_grid(&data, dims, sigmas);
        let mean_abs = exact
            .iter()
            .zip(&fast)
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / data.len() as f64;
        // The grid's error stays well under the range sigma (here 0.19, about 1% of it).
        assert!(
            mean_abs < 0.05 * sigmas.range,
            "mean |grid - exact| = {mean_abs}"
        );
        for out in [&exact, &fast] {
            // Noise is smoothed away on each side; the step between them survives.
            let side = |lo: usize, hi: usize| -> Vec<f32> {
                (0..data.len())
                    .filter(|i| (lo..hi).contains(&(i % dims[0])))
                    .map(|i| out[i])
                    .collect()
            };
            let sd = |v: &[f32]| {
                let m = v.iter().sum::<f32>() / v.len() as f32;
                (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
            };
            let (left, right) = (side(2, 10), side(14, 22));
            assert!(
                sd(&left) < 3.0 && sd(&right) < 3.0,
                "noise left: {} {}",
                sd(&left),
                sd(&right)
            );
            let gap = right.iter().sum::<f32>() / right.len() as f32
                - left.iter().sum::<f32>() / left.len() as f32;
            assert!(gap > 90.0, "edge blurred: {gap}");
        }
    }
}

//! Exact Euclidean distance transform with anisotropic spacing.
//!
//! Separable: the squared distance to the nearest feature voxel is found along x, then y, then
//! z, each line by the lower envelope of parabolas (Felzenszwalb & Huttenlocher, 2012), which
//! is exact for the Euclidean metric. Lines run in parallel (rayon).

use rayon::prelude::*;

/// Squared distance (in the units of `spacing`) from every voxel to the nearest voxel where
/// `feature` is true; `f64::INFINITY` everywhere when there is none. Voxels are x fastest,
/// `dims` = [nx, ny, nz].
///
/// # Panics
/// When `feature.len()` is not the product of `dims`.
pub fn squared_distance_to(feature: &[bool], dims: [usize; 3], spacing: [f64; 3]) -> Vec<f64> {
    let [nx, ny, nz] = dims;
    assert_eq!(
        feature.len(),
        nx * ny * nz,
        "mask does not fill dims {dims:?}"
    );
    let mut d: Vec<f64> = feature
        .iter()
        .map(|&f| if f { 0.0 } else { f64::INFINITY })
        .collect();
    if d.is_empty() {
        return d;
    }
    // x: contiguous rows.
    d.par_chunks_mut(nx).for_each_init(
        || Envelope::new(nx),
        |env, row| env.transform(row, spacing[0]),
    );
    // y: within each z-plane, lines of stride nx.
    d.par_chunks_mut(nx * ny).for_each_init(
        || (Envelope::new(ny), vec![0.0; ny]),
        |(env, line), plane| {
            for x in 0..nx {
                strided_transform(plane, x, nx, line, env, spacing[1]);
            }
        },
    );
    // z: lines of stride nx*ny; each y-row of lines is done by one task on a gathered copy.
    if nz > 1 {
        let plane = nx * ny;
        let columns: Vec<Vec<f64>> = (0..plane)
            .into_par_iter()
            .map_init(
                || Envelope::new(nz),
                |env, i| {
                    let mut line: Vec<f64> = (0..nz).map(|z| d[z * plane + i]).collect();
                    env.transform(&mut line, spacing[2]);
                    line
                },
            )
            .collect();
        for (i, line) in columns.into_iter().enumerate() {
            for (z, v) in line.into_iter().enumerate() {
                d[z * plane + i] = v;
            }
        }
    }
    d
}

/// Transforms the line of `data` starting at `start` with `stride`, through `line` scratch.
fn strided_transform(
    data: &mut [f64],
    start: usize,
    stride: usize,
    line: &mut [f64],
    env: &mut Envelope,
    spacing: f64,
) {
    for (k, v) in line.iter_mut().enumerate() {
        *v = data[start + k * stride];
    }
    env.transform(line, spacing);
    for (k, v) in line.iter().enumerate() {
        data[start + k * stride] = *v;
    }
}

/// Scratch for one line's lower envelope.
struct Envelope {
    /// Positions (in voxels) of the parabolas on the envelope.
    vertex: Vec<usize>,
    /// Boundaries between them (in voxels, fractional).
    boundary: Vec<f64>,
    input: Vec<f64>,
}

impl Envelope {
    fn new(n: usize) -> Envelope {
        Envelope {
            vertex: vec![0; n],
            boundary: vec![0.0; n + 1],
            input: vec![0.0; n],
        }
    }

    /// Replaces `f` (squared distances so far) with min over p of f(p) + (s·(q − p))².
    fn transform(&mut self, f: &mut [f64], spacing: f64) {
        let n = f.len();
        self.input[..n].copy_from_slice(f);
        let input = &self.input[..n];
        let s2 = spacing * spacing;
        // Intersection (in voxel units) of the parabolas rooted at p and q.
        let meet = |p: usize, q: usize| -> f64 {
            let (fp, fq) = (input[p], input[q]);
            ((fq + s2 * (q * q) as f64) - (fp + s2 * (p * p) as f64))
                / (2.0 * s2 * (q as f64 - p as f64))
        };
        let mut k = 0usize;
        let mut found = false;
        for (q, fq) in input.iter().enumerate() {
            if fq.is_infinite() {
                continue;
            }
            if !found {
                self.vertex[0] = q;
                self.boundary[0] = f64::NEG_INFINITY;
                self.boundary[1] = f64::INFINITY;
                found = true;
                continue;
            }
            let mut s = meet(self.vertex[k], q);
            while s <= self.boundary[k] {
                k -= 1;
                s = meet(self.vertex[k], q);
            }
            k += 1;
            self.vertex[k] = q;
            self.boundary[k] = s;
            self.boundary[k + 1] = f64::INFINITY;
        }
        if !found {
            return; // all infinite: stays infinite
        }
        let mut j = 0usize;
        for (q, out) in f.iter_mut().enumerate() {
            while self.boundary[j + 1] < q as f64 {
                j += 1;
            }
            let p = self.vertex[j];
            let dq = spacing * (q as f64 - p as f64);
            *out = dq * dq + input[p];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Lcg, coords, nearest_squared, points};

    fn brute_force(feature: &[bool], dims: [usize; 3], spacing: [f64; 3]) -> Vec<f64> {
        let features = points(feature, dims);
        (0..feature.len())
            .map(|i| nearest_squared(coords(i, dims), &features, spacing))
            .collect()
    }

    #[test]
    fn matches_brute_force_on_random_masks_with_anisotropic_spacing() {
        let mut rng = Lcg(3);
        for (dims, density) in [
            ([9, 7, 5], 0.05),
            ([12, 5, 8], 0.3),
            ([1, 6, 4], 0.2),
            ([7, 1, 1], 0.3),
        ] {
            let feature = rng.mask(dims.iter().product(), density);
            for spacing in [[1.0, 1.0, 1.0], [2.0, 0.7, 3.5]] {
                let got = squared_distance_to(&feature, dims, spacing);
                let want = brute_force(&feature, dims, spacing);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        g == w || (g - w).abs() < 1e-9 * w.max(1.0),
                        "{dims:?} {spacing:?}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_feature_is_infinitely_far() {
        let d = squared_distance_to(&[false; 8], [2, 2, 2], [1.0; 3]);
        assert!(d.iter().all(|v| v.is_infinite()));
    }
}

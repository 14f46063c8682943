//! Surfaces of binary masks and the distances between two of them: Hausdorff distance (max or
//! a percentile), average surface distance, and normalised surface Dice, with MONAI's
//! definitions.
//!
//! As MONAI (`get_mask_edges` without subvoxels): a mask's surface is the mask minus its
//! erosion by the 6-neighbour cross, with everything outside the volume taken as background.
//! The distance from a surface voxel of one mask is the Euclidean distance (with spacing) to
//! the nearest surface voxel of the other. Work is confined to the bounding box of the two
//! masks' union, widened by one voxel.

use crate::distance::squared_distance_to;
use crate::order::linear_percentile;

/// Surface voxels of `mask` (x fastest, `dims` = [nx, ny, nz]).
pub fn surface(mask: &[bool], dims: [usize; 3]) -> Vec<bool> {
    let [nx, ny, nz] = dims;
    let at = |x: usize, y: usize, z: usize| mask[(z * ny + y) * nx + x];
    let mut out = vec![false; mask.len()];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                if !at(x, y, z) {
                    continue;
                }
                let interior = x > 0
                    && x + 1 < nx
                    && y > 0
                    && y + 1 < ny
                    && z > 0
                    && z + 1 < nz
                    && at(x - 1, y, z)
                    && at(x + 1, y, z)
                    && at(x, y - 1, z)
                    && at(x, y + 1, z)
                    && at(x, y, z - 1)
                    && at(x, y, z + 1);
                out[(z * ny + y) * nx + x] = !interior;
            }
        }
    }
    out
}

/// Distances between the surfaces of a prediction and a reference mask.
#[derive(Debug, Clone, PartialEq)]
pub struct SurfaceDistances {
    /// From each prediction surface voxel to the nearest reference surface voxel.
    pub pred_to_ref: Vec<f64>,
    /// From each reference surface voxel to the nearest prediction surface voxel.
    pub ref_to_pred: Vec<f64>,
}

impl SurfaceDistances {
    /// Measures both directions. With one mask empty, the other's distances are all infinite;
    /// with both empty, both lists are empty.
    pub fn between(
        pred: &[bool],
        reference: &[bool],
        dims: [usize; 3],
        spacing: [f64; 3],
    ) -> SurfaceDistances {
        let cpu = SurfaceEngine {
            surface: |m: &[bool], d| Ok::<_, std::convert::Infallible>(surface(m, d)),
            squared_distance_to: |m: &[bool], d, s| Ok(squared_distance_to(m, d, s)),
        };
        match SurfaceDistances::between_using(pred, reference, dims, spacing, &cpu) {
            Ok(distances) => distances,
        }
    }

    /// [`SurfaceDistances::between`] with the surface and distance-transform steps given (the
    /// CUDA path runs them on the GPU; cropping and gathering stay here).
    pub(crate) fn between_using<E, S, T>(
        pred: &[bool],
        reference: &[bool],
        dims: [usize; 3],
        spacing: [f64; 3],
        engine: &SurfaceEngine<S, T>,
    ) -> Result<SurfaceDistances, E>
    where
        S: Fn(&[bool], [usize; 3]) -> Result<Vec<bool>, E>,
        T: Fn(&[bool], [usize; 3], [f64; 3]) -> Result<Vec<f64>, E>,
    {
        assert_eq!(pred.len(), reference.len(), "masks of different sizes");
        let Some((lo, hi)) = union_box(pred, reference, dims) else {
            return Ok(SurfaceDistances {
                pred_to_ref: Vec::new(),
                ref_to_pred: Vec::new(),
            });
        };
        let sub = std::array::from_fn(|a| hi[a] - lo[a]);
        let (p, r) = (crop(pred, dims, lo, sub), crop(reference, dims, lo, sub));
        let (sp, sr) = ((engine.surface)(&p, sub)?, (engine.surface)(&r, sub)?);
        let from = |a: &[bool], b: &[bool]| -> Result<Vec<f64>, E> {
            if !a.iter().any(|&v| v) {
                return Ok(Vec::new());
            }
            let d2 = (engine.squared_distance_to)(b, sub, spacing)?;
            Ok(a.iter()
                .zip(d2)
                .filter(|(f, _)| **f)
                .map(|(_, d)| d.sqrt())
                .collect())
        };
        Ok(SurfaceDistances {
            pred_to_ref: from(&sp, &sr)?,
            ref_to_pred: from(&sr, &sp)?,
        })
    }

    /// The Hausdorff distance: the larger of the two directions' maximum, or their `percentile`
    /// (0-100, linear as torch.quantile) when given. NaN when both masks are empty.
    pub fn hausdorff(&self, percentile: Option<f64>) -> f64 {
        let one = |d: &[f64]| match percentile {
            _ if d.is_empty() => f64::NAN,
            None => d.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Some(q) => {
                let mut sorted = d.to_vec();
                sorted.sort_by(f64::total_cmp);
                linear_percentile(sorted.len() as f64, q, |r| sorted[r as usize])
            }
        };
        one(&self.pred_to_ref).max(one(&self.ref_to_pred))
    }

    /// The mean surface distance: over both directions together (`symmetric`, MONAI's
    /// `symmetric=True`), else from the prediction only. NaN when there is nothing to average.
    pub fn average(&self, symmetric: bool) -> f64 {
        let mut sum = self.pred_to_ref.iter().sum::<f64>();
        let mut n = self.pred_to_ref.len();
        if symmetric {
            sum += self.ref_to_pred.iter().sum::<f64>();
            n += self.ref_to_pred.len();
        }
        if n == 0 { f64::NAN } else { sum / n as f64 }
    }

    /// Normalised surface Dice: the share of both surfaces lying within `tolerance` of the other.
    pub fn surface_dice(&self, tolerance: f64) -> f64 {
        let within = |d: &[f64]| d.iter().filter(|&&v| v <= tolerance).count();
        let n = self.pred_to_ref.len() + self.ref_to_pred.len();
        if n == 0 {
            return f64::NAN;
        }
        (within(&self.pred_to_ref) + within(&self.ref_to_pred)) as f64 / n as f64
    }
}

/// The bounding box [lo, hi) of the union of two masks, one voxel wider on each side (within
/// the volume); `None` when both are empty.
fn union_box(a: &[bool], b: &[bool], dims: [usize; 3]) -> Option<([usize; 3], [usize; 3])> {
    let [nx, ny, _] = dims;
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    for (i, _) in a.iter().zip(b).enumerate().filter(|(_, (p, q))| **p || **q) {
        let at = [i % nx, (i / nx) % ny, i / (nx * ny)];
        for k in 0..3 {
            lo[k] = lo[k].min(at[k]);
            hi[k] = hi[k].max(at[k]);
        }
    }
    if lo[0] == usize::MAX {
        return None;
    }
    Some((
        std::array::from_fn(|k| lo[k].saturating_sub(1)),
        std::array::from_fn(|k| (hi[k] + 2).min(dims[k])),
    ))
}

fn crop(mask: &[bool], dims: [usize; 3], lo: [usize; 3], sub: [usize; 3]) -> Vec<bool> {
    let [nx, ny, _] = dims;
    let mut out = Vec::with_capacity(sub.iter().product());
    for z in lo[2]..lo[2] + sub[2] {
        for y in lo[1]..lo[1] + sub[1] {
            let start = (z * ny + y) * nx + lo[0];
            out.extend_from_slice(&mask[start..start + sub[0]]);
        }
    }
    out
}

/// The two steps of a surface-distance computation that can run elsewhere (on a GPU).
pub(crate) struct SurfaceEngine<S, T> {
    pub surface: S,
    pub squared_distance_to: T,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Lcg, nearest_squared, points};

    /// MONAI's golden case (`../shared/peer/metrics_golden.py`): an 8^3 cube at [5, 13)^3 in a
    /// 20^3 volume, and the same cube shifted by 2 voxels along axis 0.
    fn shifted_cubes() -> (Vec<bool>, Vec<bool>) {
        let dims = 20;
        let cube = |shift: usize| -> Vec<bool> {
            (0..dims * dims * dims)
                .map(|i| {
                    let (x, y, z) = (i % dims, (i / dims) % dims, i / (dims * dims));
                    (5 + shift..13 + shift).contains(&x)
                        && (5..13).contains(&y)
                        && (5..13).contains(&z)
                })
                .collect()
        };
        (cube(2), cube(0))
    }

    /// `fixtures/metrics/monai_golden.json`, written by `fixtures/metrics/make.sh`.
    fn golden(key: &str) -> f64 {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/metrics/monai_golden.json"
        );
        let text = std::fs::read_to_string(path).expect("golden fixture");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing"))
    }

    #[test]
    fn monai_golden_values() {
        let (pred, reference) = shifted_cubes();
        let d = SurfaceDistances::between(&pred, &reference, [20; 3], [1.0; 3]);
        assert!((d.hausdorff(Some(95.0)) - golden("hd95")).abs() < 1e-6);
        assert!((d.hausdorff(None) - golden("hd100")).abs() < 1e-6);
        // MONAI averages in float32: agree to its precision.
        let asd = d.average(true);
        assert!((asd - golden("asd_symmetric")).abs() < 1e-6, "{asd}");
        let d = SurfaceDistances::between(&pred, &reference, [20; 3], [2.0, 1.0, 1.0]);
        assert!((d.hausdorff(Some(95.0)) - golden("hd95_spacing_2_1_1")).abs() < 1e-6);
    }

    #[test]
    fn surface_dice_and_empty_masks() {
        let (pred, reference) = shifted_cubes();
        let d = SurfaceDistances::between(&pred, &reference, [20; 3], [1.0; 3]);
        assert_eq!(d.surface_dice(100.0), 1.0);
        assert!(d.surface_dice(0.0) < 1.0 && d.surface_dice(0.0) > 0.0);
        let empty = vec![false; pred.len()];
        let one_sided = SurfaceDistances::between(&pred, &empty, [20; 3], [1.0; 3]);
        assert!(one_sided.hausdorff(None).is_infinite());
        assert!(
            SurfaceDistances::between(&empty, &empty, [20; 3], [1.0; 3])
                .hausdorff(None)
                .is_nan()
        );
    }

    #[test]
    fn distances_match_brute_force_on_random_masks() {
        let dims = [9, 8, 7];
        let n: usize = dims.iter().product();
        let mut rng = Lcg(17);
        let (pred, reference) = (rng.mask(n, 0.4), rng.mask(n, 0.3));
        let spacing = [1.5, 0.8, 2.0];
        let d = SurfaceDistances::between(&pred, &reference, dims, spacing);
        let brute = |from: &[bool], to: &[bool]| -> Vec<f64> {
            let targets = points(&surface(to, dims), dims);
            points(&surface(from, dims), dims)
                .into_iter()
                .map(|p| nearest_squared(p, &targets, spacing).sqrt())
                .collect()
        };
        let close = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
        };
        assert!(close(&d.pred_to_ref, &brute(&pred, &reference)));
        assert!(close(&d.ref_to_pred, &brute(&reference, &pred)));
    }

    #[test]
    fn border_voxels_are_surface() {
        let full = vec![true; 27];
        let s = surface(&full, [3, 3, 3]);
        assert_eq!(s.iter().filter(|&&v| v).count(), 26, "all but the centre");
    }
}

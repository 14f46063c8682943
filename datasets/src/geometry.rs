//! Voxel grids: a size and a voxel-to-world affine, and when two count as the same.

use crate::affine::Affine;
use crate::error::GeometryMismatch;
use crate::orientation::Orientation;

/// A voxel grid: its size and its voxel-to-world affine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Voxels along i, j, k.
    pub dims: [usize; 3],
    /// Voxel (i, j, k) to world (RAS+ mm).
    pub affine: Affine,
}

/// How closely two grids must agree to count as the same (image vs label, channel vs channel).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeometryTolerance {
    /// Relative difference allowed in each voxel size.
    pub spacing_rel: f64,
    /// Difference allowed in each unit direction vector's components.
    pub direction: f64,
    /// Origin difference allowed, as a fraction of the smallest voxel size.
    pub origin_voxels: f64,
}

impl Default for GeometryTolerance {
    /// Tight enough to catch a wrong file, loose enough for float32 vs float64 headers.
    fn default() -> Self {
        GeometryTolerance {
            spacing_rel: 1e-4,
            direction: 1e-4,
            origin_voxels: 1e-3,
        }
    }
}

impl Geometry {
    /// Voxel sizes along i, j, k in mm.
    pub fn spacing(&self) -> [f64; 3] {
        self.affine.spacing()
    }

    /// Anatomical orientation of the voxel axes.
    pub fn orientation(&self) -> Orientation {
        Orientation::of(&self.affine)
    }

    /// Voxels in one channel.
    pub fn voxel_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// The first way `other` differs from this grid beyond `tol`, if any.
    pub fn mismatch(&self, other: &Geometry, tol: &GeometryTolerance) -> Option<GeometryMismatch> {
        if self.dims != other.dims {
            return Some(GeometryMismatch::Shape {
                left: self.dims,
                right: other.dims,
            });
        }
        let (sa, sb) = (self.spacing(), other.spacing());
        if (0..3).any(|a| (sa[a] - sb[a]).abs() > tol.spacing_rel * sa[a].abs().max(sb[a].abs())) {
            return Some(GeometryMismatch::Spacing {
                left: sa,
                right: sb,
            });
        }
        let (da, db) = (self.affine.directions(), other.affine.directions());
        let direction_diff = (0..3)
            .flat_map(|r| (0..3).map(move |c| (r, c)))
            .map(|(r, c)| (da[r][c] - db[r][c]).abs());
        if direction_diff.fold(0.0, f64::max) > tol.direction {
            return Some(GeometryMismatch::Direction {
                left: self.orientation(),
                right: other.orientation(),
            });
        }
        let (oa, ob) = (self.affine.origin(), other.affine.origin());
        let distance = (0..3).map(|a| (oa[a] - ob[a]).powi(2)).sum::<f64>().sqrt();
        let min_spacing = sa.iter().cloned().fold(f64::INFINITY, f64::min);
        if distance > tol.origin_voxels * min_spacing {
            return Some(GeometryMismatch::Origin {
                left: oa,
                right: ob,
                distance_mm: distance,
            });
        }
        None
    }
}

//! 4x4 voxel-to-world affines (RAS+ millimetres, as NIfTI and nibabel define them).

/// A voxel-to-world transform: `world = M * [i, j, k, 1]`, rows are world axes (x, y, z, 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [[f64; 4]; 4]);

impl Affine {
    /// The identity: 1 mm voxels, RAS, origin at voxel 0.
    pub const IDENTITY: Affine = Affine([
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]);

    /// An axis-aligned RAS affine with the given spacing and origin.
    pub fn from_spacing_origin(spacing: [f64; 3], origin: [f64; 3]) -> Affine {
        let mut m = Affine::IDENTITY;
        for a in 0..3 {
            m.0[a][a] = spacing[a];
            m.0[a][3] = origin[a];
        }
        m
    }

    /// The affine built from three world rows (NIfTI's `srow_x/y/z`).
    pub fn from_rows(rows: [[f64; 4]; 3]) -> Affine {
        Affine([rows[0], rows[1], rows[2], [0.0, 0.0, 0.0, 1.0]])
    }

    /// Column `voxel_axis` of the 3x3 part: the world step of one voxel along that axis.
    pub fn column(&self, voxel_axis: usize) -> [f64; 3] {
        [
            self.0[0][voxel_axis],
            self.0[1][voxel_axis],
            self.0[2][voxel_axis],
        ]
    }

    /// Sets column `voxel_axis` of the 3x3 part.
    pub fn set_column(&mut self, voxel_axis: usize, column: [f64; 3]) {
        for (row, value) in column.into_iter().enumerate() {
            self.0[row][voxel_axis] = value;
        }
    }

    /// The world position of voxel (0, 0, 0).
    pub fn origin(&self) -> [f64; 3] {
        [self.0[0][3], self.0[1][3], self.0[2][3]]
    }

    /// Voxel size along each voxel axis, as MONAI computes it: the norms of the 3x3 columns.
    pub fn spacing(&self) -> [f64; 3] {
        [0, 1, 2].map(|a| norm(self.column(a)))
    }

    /// The 3x3 part with unit columns (directions of the voxel axes in world space).
    pub fn directions(&self) -> [[f64; 3]; 3] {
        let spacing = self.spacing();
        let mut d = [[0.0; 3]; 3];
        for (a, &s) in spacing.iter().enumerate() {
            let s = if s == 0.0 { 1.0 } else { s };
            for (r, row) in d.iter_mut().enumerate() {
                row[a] = self.0[r][a] / s;
            }
        }
        d
    }

    /// Maps a voxel coordinate to world millimetres.
    pub fn apply(&self, voxel: [f64; 3]) -> [f64; 3] {
        let m = &self.0;
        [0, 1, 2].map(|r| m[r][0] * voxel[0] + m[r][1] * voxel[1] + m[r][2] * voxel[2] + m[r][3])
    }

    /// The matrix product `self * other`.
    pub fn compose(&self, other: &Affine) -> Affine {
        let mut out = [[0.0; 4]; 4];
        for (r, row) in out.iter_mut().enumerate() {
            for (c, cell) in row.iter_mut().enumerate() {
                *cell = (0..4).map(|k| self.0[r][k] * other.0[k][c]).sum();
            }
        }
        Affine(out)
    }

    /// The largest absolute difference between two affines' entries.
    pub fn max_abs_diff(&self, other: &Affine) -> f64 {
        let mut worst = 0.0f64;
        for r in 0..4 {
            for c in 0..4 {
                worst = worst.max((self.0[r][c] - other.0[r][c]).abs());
            }
        }
        worst
    }

    /// Whether every entry is finite and the 3x3 part is invertible.
    pub fn is_valid(&self) -> bool {
        self.0.iter().flatten().all(|v| v.is_finite()) && det3(&self.linear()).abs() > 1e-12
    }

    /// The 3x3 linear part.
    pub fn linear(&self) -> [[f64; 3]; 3] {
        let m = &self.0;
        [0, 1, 2].map(|r| [m[r][0], m[r][1], m[r][2]])
    }

    /// The affine of a NIfTI qform: quaternion (b, c, d), offsets, voxel sizes and qfac,
    /// computed as nibabel's `get_qform` does (a = sqrt(1 - b² - c² - d²), clamped at 0).
    pub fn from_quaternion(bcd: [f64; 3], offset: [f64; 3], pixdim: [f64; 3], qfac: f64) -> Affine {
        let [b, c, d] = bcd;
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        Affine::from_full_quaternion([a, b, c, d], offset, pixdim, qfac)
    }

    /// [`Self::from_quaternion`] with the real part `a` already worked out.
    pub fn from_full_quaternion(
        abcd: [f64; 4],
        offset: [f64; 3],
        pixdim: [f64; 3],
        qfac: f64,
    ) -> Affine {
        let [a, b, c, d] = abcd;
        let r = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        let qfac = if qfac < 0.0 { -1.0 } else { 1.0 };
        let zooms = [pixdim[0], pixdim[1], pixdim[2] * qfac];
        let mut m = Affine::IDENTITY;
        for row in 0..3 {
            for col in 0..3 {
                m.0[row][col] = r[row][col] * zooms[col];
            }
            m.0[row][3] = offset[row];
        }
        m
    }

    /// The NIfTI qform of this affine: quaternion (b, c, d), offsets, voxel sizes and qfac.
    /// Shears and non-orthogonal columns cannot be expressed in a qform: the nearest rotation
    /// (polar decomposition) is used, as nibabel's `set_qform` does; the sform keeps the exact
    /// affine.
    pub fn to_quaternion(&self) -> Quaternion {
        let zooms = self.spacing();
        let mut rotation = polar_rotation(self.directions());
        let mut qfac = 1.0;
        if det3(&rotation) < 0.0 {
            qfac = -1.0;
            for row in rotation.iter_mut() {
                row[2] = -row[2];
            }
        }
        let bcd = rotation_to_quaternion(&rotation);
        Quaternion {
            bcd,
            offset: self.origin(),
            pixdim: zooms,
            qfac,
        }
    }
}

/// The parts of a NIfTI qform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quaternion {
    /// quatern_b, quatern_c, quatern_d (a >= 0 is implied).
    pub bcd: [f64; 3],
    /// qoffset_x, qoffset_y, qoffset_z.
    pub offset: [f64; 3],
    /// pixdim[1..=3].
    pub pixdim: [f64; 3],
    /// pixdim[0]: -1 when the third axis is mirrored.
    pub qfac: f64,
}

fn norm(v: [f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

pub(crate) fn det3(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

fn inverse_transpose3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = det3(m);
    if det.abs() < 1e-300 {
        return None;
    }
    // The inverse transpose is the cofactor matrix over the determinant.
    let c =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    Some([
        [
            c(1, 2, 1, 2) / det,
            -c(1, 2, 0, 2) / det,
            c(1, 2, 0, 1) / det,
        ],
        [
            -c(0, 2, 1, 2) / det,
            c(0, 2, 0, 2) / det,
            -c(0, 2, 0, 1) / det,
        ],
        [
            c(0, 1, 1, 2) / det,
            -c(0, 1, 0, 2) / det,
            c(0, 1, 0, 1) / det,
        ],
    ])
}

/// The orthogonal matrix nearest to `m` (the polar factor), by Newton's iteration
/// R <- (R + R^-T) / 2, which converges quadratically for an invertible `m`.
pub(crate) fn polar_rotation(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut r = m;
    for _ in 0..50 {
        let Some(it) = inverse_transpose3(&r) else {
            return r;
        };
        let mut next = r;
        let mut change = 0.0f64;
        for i in 0..3 {
            for j in 0..3 {
                next[i][j] = 0.5 * (r[i][j] + it[i][j]);
                change = change.max((next[i][j] - r[i][j]).abs());
            }
        }
        r = next;
        if change < 1e-15 {
            break;
        }
    }
    r
}

/// Quaternion (b, c, d) with a >= 0 of a proper rotation matrix (as nifti1_io does it).
fn rotation_to_quaternion(r: &[[f64; 3]; 3]) -> [f64; 3] {
    let (xd, yd, zd) = (r[0][0], r[1][1], r[2][2]);
    let (a, b, c, d);
    // nifti1_io switches branches at trace + 1 = 0.5 for numerical stability.
    if xd + yd + zd + 1.0 > 0.5 {
        let s = 0.5 * (xd + yd + zd + 1.0).sqrt();
        a = s;
        b = 0.25 * (r[2][1] - r[1][2]) / s;
        c = 0.25 * (r[0][2] - r[2][0]) / s;
        d = 0.25 * (r[1][0] - r[0][1]) / s;
    } else if xd > yd && xd > zd {
        let s = 0.5 * (1.0 + xd - yd - zd).sqrt();
        b = s;
        c = 0.25 * (r[0][1] + r[1][0]) / s;
        d = 0.25 * (r[0][2] + r[2][0]) / s;
        a = 0.25 * (r[2][1] - r[1][2]) / s;
    } else if yd > zd {
        let s = 0.5 * (1.0 - xd + yd - zd).sqrt();
        c = s;
        b = 0.25 * (r[0][1] + r[1][0]) / s;
        d = 0.25 * (r[1][2] + r[2][1]) / s;
        a = 0.25 * (r[0][2] - r[2][0]) / s;
    } else {
        let s = 0.5 * (1.0 - xd - yd + zd).sqrt();
        d = s;
        b = 0.25 * (r[0][2] + r[2][0]) / s;
        c = 0.25 * (r[1][2] + r[2][1]) / s;
        a = 0.25 * (r[1][0] - r[0][1]) / s;
    }
    if a < 0.0 { [-b, -c, -d] } else { [b, c, d] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lps_oblique() -> Affine {
        // 10 degrees about z, LPS-like flips, anisotropic voxels, a mirrored third axis.
        let (s, c) = 10f64.to_radians().sin_cos();
        Affine([
            [-0.8 * c, 0.8 * s, 0.0, 120.5],
            [-0.8 * s, -0.8 * c, 0.0, 99.25],
            [0.0, 0.0, -2.5, -40.0],
            [0.0, 0.0, 0.0, 1.0],
        ])
    }

    #[test]
    fn quaternion_round_trip_keeps_the_affine() {
        for affine in [
            Affine::IDENTITY,
            lps_oblique(),
            Affine::from_spacing_origin([0.7, 0.7, 5.0], [-1.0, 2.0, 3.0]),
        ] {
            let q = affine.to_quaternion();
            let back = Affine::from_quaternion(q.bcd, q.offset, q.pixdim, q.qfac);
            assert!(back.max_abs_diff(&affine) < 1e-12, "{affine:?} -> {back:?}");
        }
    }

    #[test]
    fn spacing_is_column_norms_and_compose_matches_apply() {
        let a = lps_oblique();
        let s = a.spacing();
        assert!(
            (s[0] - 0.8).abs() < 1e-12 && (s[1] - 0.8).abs() < 1e-12 && (s[2] - 2.5).abs() < 1e-12
        );
        let shift = Affine::from_spacing_origin([1.0, 1.0, 1.0], [2.0, 3.0, 4.0]);
        let p = a.compose(&shift).apply([0.0, 0.0, 0.0]);
        let q = a.apply([2.0, 3.0, 4.0]);
        assert!((0..3).all(|i| (p[i] - q[i]).abs() < 1e-12));
    }

    #[test]
    fn polar_rotation_removes_shear() {
        let sheared = [[1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let r = polar_rotation(sheared);
        let rt_r: Vec<f64> = (0..3)
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .map(|(i, j)| (0..3).map(|k| r[k][i] * r[k][j]).sum::<f64>())
            .collect();
        let identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        assert!(
            rt_r.iter()
                .zip(identity)
                .all(|(a, b)| (a - b).abs() < 1e-12)
        );
    }
}

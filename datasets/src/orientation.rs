//! Anatomical orientation of voxel axes ("RAS", "LPS", ...) and reorientation between them.

use std::fmt;

use crate::affine::{Affine, polar_rotation};

/// Where one voxel axis points in world (RAS+) space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisDirection {
    /// The world axis it runs along: 0 = left-right, 1 = posterior-anterior, 2 = inferior-superior.
    pub world_axis: usize,
    /// True when the index increases towards R, A or S.
    pub positive: bool,
}

/// The orientation of the three voxel axes, written as nibabel's axis codes ("RAS", "LPS").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orientation(pub [AxisDirection; 3]);

const CODES: [[char; 2]; 3] = [['L', 'R'], ['P', 'A'], ['I', 'S']];

impl Orientation {
    /// RAS: the orientation MONAI and autoseg work in.
    pub const RAS: Orientation = Orientation([
        AxisDirection {
            world_axis: 0,
            positive: true,
        },
        AxisDirection {
            world_axis: 1,
            positive: true,
        },
        AxisDirection {
            world_axis: 2,
            positive: true,
        },
    ]);

    /// The orientation of an affine, by nibabel's `io_orientation` rule: take the rotation
    /// nearest to the direction matrix, then for each voxel axis in turn the world axis it
    /// moves along most, never reusing a world axis.
    pub fn of(affine: &Affine) -> Orientation {
        let mut r = polar_rotation(affine.directions());
        let mut out = Orientation::RAS.0;
        for (voxel_axis, direction) in out.iter_mut().enumerate() {
            let world_axis = (0..3)
                .max_by(|&a, &b| r[a][voxel_axis].abs().total_cmp(&r[b][voxel_axis].abs()))
                .unwrap();
            *direction = AxisDirection {
                world_axis,
                positive: r[world_axis][voxel_axis] >= 0.0,
            };
            r[world_axis] = [0.0; 3];
        }
        Orientation(out)
    }

    /// Parses three axis codes such as "RAS" or "lps".
    pub fn parse(codes: &str) -> Option<Orientation> {
        let chars: Vec<char> = codes.chars().map(|c| c.to_ascii_uppercase()).collect();
        if chars.len() != 3 {
            return None;
        }
        let mut out = Orientation::RAS.0;
        for (slot, ch) in out.iter_mut().zip(&chars) {
            let world_axis = CODES.iter().position(|pair| pair.contains(ch))?;
            *slot = AxisDirection {
                world_axis,
                positive: CODES[world_axis][1] == *ch,
            };
        }
        let mut seen = [false; 3];
        for d in &out {
            if std::mem::replace(&mut seen[d.world_axis], true) {
                return None;
            }
        }
        Some(Orientation(out))
    }
}

impl fmt::Display for Orientation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            write!(f, "{}", CODES[d.world_axis][d.positive as usize])?;
        }
        Ok(())
    }
}

/// A permutation and flip of voxel axes that takes one orientation to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisTransform {
    /// New axis `a` is old axis `source[a]`.
    pub source: [usize; 3],
    /// Whether new axis `a` runs opposite to its old axis.
    pub flip: [bool; 3],
}

impl AxisTransform {
    /// The transform that takes data in orientation `from` to orientation `to`.
    pub fn between(from: Orientation, to: Orientation) -> AxisTransform {
        let mut source = [0; 3];
        let mut flip = [false; 3];
        for (a, target) in to.0.iter().enumerate() {
            let b = from
                .0
                .iter()
                .position(|d| d.world_axis == target.world_axis)
                .unwrap();
            source[a] = b;
            flip[a] = from.0[b].positive != target.positive;
        }
        AxisTransform { source, flip }
    }

    /// Whether the transform changes nothing.
    pub fn is_identity(&self) -> bool {
        self.source == [0, 1, 2] && self.flip == [false; 3]
    }

    /// The dims after the transform.
    pub fn dims(&self, dims: [usize; 3]) -> [usize; 3] {
        self.source.map(|b| dims[b])
    }

    /// The affine of the transformed grid: same world positions for the same voxels.
    pub fn affine(&self, affine: &Affine, dims: [usize; 3]) -> Affine {
        let mut out = *affine;
        let mut origin = affine.origin();
        for a in 0..3 {
            let b = self.source[a];
            let mut column = affine.column(b);
            if self.flip[a] {
                let last = (dims[b] - 1) as f64;
                for (o, c) in origin.iter_mut().zip(column) {
                    *o += c * last;
                }
                column = column.map(|c| -c);
            }
            out.set_column(a, column);
        }
        for (row, o) in origin.into_iter().enumerate() {
            out.0[row][3] = o;
        }
        out
    }

    /// Whether the transform reorders axes (and not only flips them).
    pub fn permutes(&self) -> bool {
        self.source != [0, 1, 2]
    }

    /// Applies a transform that only flips axes to one channel in place (no second buffer).
    ///
    /// # Panics
    /// If the transform permutes axes.
    pub fn flip_in_place<T>(&self, dims: [usize; 3], data: &mut [T]) {
        assert!(!self.permutes(), "flip_in_place on a permutation");
        let [nx, ny, nz] = dims;
        if self.flip[0] {
            data.chunks_exact_mut(nx).for_each(<[T]>::reverse);
        }
        if self.flip[1] {
            for plane in data.chunks_exact_mut(nx * ny) {
                for j in 0..ny / 2 {
                    let (front, back) = plane.split_at_mut((ny - 1 - j) * nx);
                    front[j * nx..(j + 1) * nx].swap_with_slice(&mut back[..nx]);
                }
            }
        }
        if self.flip[2] {
            for k in 0..nz / 2 {
                let (front, back) = data.split_at_mut((nz - 1 - k) * nx * ny);
                front[k * nx * ny..(k + 1) * nx * ny].swap_with_slice(&mut back[..nx * ny]);
            }
        }
    }

    /// Applies the transform to one channel of x-fastest data with `dims`.
    pub fn apply<T: Copy>(&self, dims: [usize; 3], data: &[T], out: &mut Vec<T>) {
        let old_stride = [1, dims[0], dims[0] * dims[1]];
        let new_dims = self.dims(dims);
        let mut start = 0isize;
        let mut step = [0isize; 3];
        for a in 0..3 {
            let b = self.source[a];
            let stride = old_stride[b] as isize;
            if self.flip[a] {
                start += (dims[b] as isize - 1) * stride;
                step[a] = -stride;
            } else {
                step[a] = stride;
            }
        }
        out.reserve(data.len());
        for k in 0..new_dims[2] {
            let plane = start + k as isize * step[2];
            for j in 0..new_dims[1] {
                let mut at = plane + j as isize * step[1];
                for _ in 0..new_dims[0] {
                    out.push(data[at as usize]);
                    at += step[0];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipping_in_place_equals_copying() {
        let dims = [4, 3, 5];
        let data: Vec<u32> = (0..60).collect();
        for flip in [
            [true, false, false],
            [false, true, false],
            [false, false, true],
            [true, true, true],
        ] {
            let t = AxisTransform {
                source: [0, 1, 2],
                flip,
            };
            let mut copied = Vec::new();
            t.apply(dims, &data, &mut copied);
            let mut in_place = data.clone();
            t.flip_in_place(dims, &mut in_place);
            assert_eq!(in_place, copied, "{flip:?}");
        }
    }

    #[test]
    fn codes_parse_print_and_come_from_affines() {
        for code in ["RAS", "LPS", "PIR", "SAL"] {
            assert_eq!(Orientation::parse(code).unwrap().to_string(), code);
        }
        assert!(Orientation::parse("RRS").is_none() && Orientation::parse("RA").is_none());
        let mut lps = Affine::IDENTITY;
        lps.0[0][0] = -0.9;
        lps.0[1][1] = -0.9;
        assert_eq!(Orientation::of(&lps).to_string(), "LPS");
        // Oblique by 30 degrees: still closest to RAS.
        let (s, c) = 30f64.to_radians().sin_cos();
        let oblique = Affine([
            [c, -s, 0.0, 0.0],
            [s, c, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        assert_eq!(Orientation::of(&oblique).to_string(), "RAS");
    }

    #[test]
    fn transform_keeps_every_voxel_at_its_world_position() {
        let dims = [3, 4, 5];
        let mut affine = Affine::from_spacing_origin([1.0, 2.0, 3.0], [10.0, 20.0, 30.0]);
        affine.0[0][0] = -1.0; // L
        let from = Orientation::of(&affine);
        let to = Orientation::parse("SPR").unwrap();
        let t = AxisTransform::between(from, to);
        let data: Vec<usize> = (0..60).collect();
        let mut out = Vec::new();
        t.apply(dims, &data, &mut out);
        let new_dims = t.dims(dims);
        let new_affine = t.affine(&affine, dims);
        assert_eq!(Orientation::of(&new_affine), to);
        for (n, &old_index) in out.iter().enumerate() {
            let new_ijk = [
                n % new_dims[0],
                n / new_dims[0] % new_dims[1],
                n / (new_dims[0] * new_dims[1]),
            ];
            let old_ijk = [old_index % 3, old_index / 3 % 4, old_index / 12];
            let p = new_affine.apply(new_ijk.map(|v| v as f64));
            let q = affine.apply(old_ijk.map(|v| v as f64));
            assert!((0..3).all(|i| (p[i] - q[i]).abs() < 1e-9));
        }
    }
}

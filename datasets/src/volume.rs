//! In-memory volumes: channels-first voxel data on a grid with a world affine.
//!
//! Layout: channel `c`, voxel `(i, j, k)` is at `c * nx*ny*nz + i + nx * (j + ny * k)`, so x
//! runs fastest. That is NIfTI's own file order, so reading needs no transpose. As a tensor the
//! same buffer is `[C, nz, ny, nx]`; `dims()` gives `[nx, ny, nz]` as nibabel and MONAI do.

use std::path::{Path, PathBuf};

use crate::affine::Affine;
use crate::error::{DatasetError, GeometryMismatch, LabelError};
use crate::geometry::{Geometry, GeometryTolerance};
use crate::label_scan::LabelScan;
use crate::nifti::{self, DataType, NiftiElement, NiftiErrorKind, NiftiHeader};
use crate::orientation::{AxisTransform, Orientation};

/// Channels-first voxel data on a [`Geometry`], with the NIfTI header it came from.
#[derive(Debug, Clone)]
pub struct Image<T> {
    geometry: Geometry,
    channels: usize,
    data: Vec<T>,
    header: NiftiHeader,
}

/// An image: f32 intensities, one or more channels.
pub type Volume = Image<f32>;
/// A label map: one channel of class ids.
pub type LabelVolume = Image<u16>;

impl<T: Copy> Image<T> {
    /// An image from data in the documented layout; a fresh header is made for it.
    ///
    /// # Panics
    /// If `data.len()` is not `channels * geometry.voxel_count()`.
    pub fn new(geometry: Geometry, channels: usize, data: Vec<T>) -> Self {
        assert_eq!(
            data.len(),
            channels * geometry.voxel_count(),
            "data does not fit the geometry"
        );
        let header = fresh_header(&geometry, channels, DataType::F32);
        Image {
            geometry,
            channels,
            data,
            header,
        }
    }

    /// This image's data with another element type and channel count, on the same grid and
    /// header (its channel dimension set to `channels`).
    pub fn with_data<U: Copy>(&self, channels: usize, data: Vec<U>) -> Image<U> {
        assert_eq!(
            data.len(),
            channels * self.geometry.voxel_count(),
            "data does not fit the geometry"
        );
        let mut header = self.header.clone();
        if channels != self.channels {
            set_channel_dim(&mut header, channels);
        }
        Image {
            geometry: self.geometry,
            channels,
            data,
            header,
        }
    }

    /// The grid.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Voxels along i, j, k.
    pub fn dims(&self) -> [usize; 3] {
        self.geometry.dims
    }

    /// Voxel sizes in mm.
    pub fn spacing(&self) -> [f64; 3] {
        self.geometry.spacing()
    }

    /// The voxel-to-world affine.
    pub fn affine(&self) -> &Affine {
        &self.geometry.affine
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// All voxels, channels first, x fastest.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// All voxels, mutable.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The voxels of channel `c`.
    pub fn channel(&self, c: usize) -> &[T] {
        let n = self.geometry.voxel_count();
        &self.data[c * n..(c + 1) * n]
    }

    /// Takes the data out.
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// The NIfTI header the image was read with (or made for it).
    pub fn header(&self) -> &NiftiHeader {
        &self.header
    }

    /// The same voxels permuted and flipped into `target` orientation (affine updated so every
    /// voxel keeps its world position). MONAI's `Orientationd` does the same.
    pub fn reorient(&self, target: Orientation) -> Self {
        let transform = AxisTransform::between(self.geometry.orientation(), target);
        self.transformed(&transform)
    }

    /// [`Self::reorient`] to RAS.
    pub fn to_ras(&self) -> Self {
        self.reorient(Orientation::RAS)
    }

    /// [`Self::reorient`] by value: no copy when the image is already in `target` orientation.
    pub fn into_orientation(mut self, target: Orientation) -> Self {
        let transform = AxisTransform::between(self.geometry.orientation(), target);
        if transform.is_identity() {
            return self;
        }
        if transform.permutes() {
            return self.transformed(&transform);
        }
        let dims = self.geometry.dims;
        for channel in self.data.chunks_exact_mut(dims.iter().product()) {
            transform.flip_in_place(dims, channel);
        }
        self.geometry = self.transformed_geometry(&transform);
        set_spatial_dims(&mut self.header, self.geometry.dims);
        self.header.set_affine(&self.geometry.affine);
        self
    }

    /// [`Self::into_orientation`] to RAS.
    pub fn into_ras(self) -> Self {
        self.into_orientation(Orientation::RAS)
    }

    /// Brings data on a reoriented grid back onto `target` (the grid it was reoriented from):
    /// the data is permuted and flipped, and `target`'s affine is taken as it is, so a round
    /// trip gives back the identical affine. Fails if the grids are not the same up to axes.
    pub fn reorient_onto(&self, target: &Geometry) -> Result<Self, GeometryMismatch> {
        let transform = AxisTransform::between(self.geometry.orientation(), target.orientation());
        Self::adopt_geometry(self.transformed(&transform), target)
    }

    /// [`Self::reorient_onto`] by value: no copy when the axes already agree.
    pub fn into_onto(self, target: &Geometry) -> Result<Self, GeometryMismatch> {
        let out = self.into_orientation(target.orientation());
        Self::adopt_geometry(out, target)
    }

    /// Checks that `out` lies on `target`'s grid and takes `target`'s affine exactly.
    fn adopt_geometry(mut out: Self, target: &Geometry) -> Result<Self, GeometryMismatch> {
        if let Some(mismatch) = out.geometry.mismatch(target, &GeometryTolerance::default()) {
            return Err(mismatch);
        }
        out.geometry.affine = target.affine;
        out.header.set_affine(&target.affine);
        Ok(out)
    }

    fn transformed_geometry(&self, transform: &AxisTransform) -> Geometry {
        let dims = self.geometry.dims;
        Geometry {
            dims: transform.dims(dims),
            affine: transform.affine(&self.geometry.affine, dims),
        }
    }

    fn transformed(&self, transform: &AxisTransform) -> Self {
        if transform.is_identity() {
            return self.clone();
        }
        let dims = self.geometry.dims;
        let mut data = Vec::with_capacity(self.data.len());
        for c in 0..self.channels {
            transform.apply(dims, self.channel(c), &mut data);
        }
        let geometry = self.transformed_geometry(transform);
        let mut header = self.header.clone();
        set_spatial_dims(&mut header, geometry.dims);
        header.set_affine(&geometry.affine);
        Image {
            geometry,
            channels: self.channels,
            data,
            header,
        }
    }
}

/// nnU-Net's crop box, grown one row (an x run of one channel) at a time: what
/// [`Volume::nonzero_box`] gives for a whole volume, and what a caller already passing over the
/// rows for other figures can gather on the way.
#[derive(Debug, Clone, Copy)]
pub struct NonzeroBox {
    lo: [usize; 3],
    /// Exclusive.
    hi: [usize; 3],
}

impl Default for NonzeroBox {
    fn default() -> Self {
        NonzeroBox::new()
    }
}

impl NonzeroBox {
    /// A box holding no voxel yet.
    pub fn new() -> NonzeroBox {
        NonzeroBox {
            lo: [usize::MAX; 3],
            hi: [0; 3],
        }
    }

    /// Takes in the voxels != 0 (either sign of zero is zero) of `row`, row y of slice z. An
    /// all-zero row is told by one branch-free pass, the ends of another by a search from each.
    pub fn add_row(&mut self, row: &[f32], y: usize, z: usize) {
        if row.iter().fold(0u32, |any, v| any | (v.to_bits() << 1)) == 0 {
            return;
        }
        let first = row.iter().position(|&v| v != 0.0).unwrap_or(0);
        let last = row.iter().rposition(|&v| v != 0.0).unwrap_or(0);
        for (a, (l, h)) in [(first, last), (y, y), (z, z)].into_iter().enumerate() {
            self.lo[a] = self.lo[a].min(l);
            self.hi[a] = self.hi[a].max(h + 1);
        }
    }

    /// `[start, end)` per axis, the whole grid of `dims` when no voxel was != 0 (nnU-Net
    /// keeps an empty image whole).
    pub fn finish(&self, dims: [usize; 3]) -> [[usize; 2]; 3] {
        if self.lo[0] == usize::MAX {
            return dims.map(|n| [0, n]);
        }
        std::array::from_fn(|a| [self.lo[a], self.hi[a]])
    }
}

impl Volume {
    /// nnU-Net's crop: `[start, end)` per axis of the voxels non-zero in any channel (the
    /// whole grid when there are none). The analyzer reports its shape; training crops to it.
    pub fn nonzero_box(&self) -> [[usize; 2]; 3] {
        let [nx, ny, _] = self.dims();
        let mut crop = NonzeroBox::new();
        for c in 0..self.channels() {
            for (r, row) in self.channel(c).chunks_exact(nx.max(1)).enumerate() {
                crop.add_row(row, r % ny, r / ny);
            }
        }
        crop.finish(self.dims())
    }

    /// Reads a 3D or 4D NIfTI file; a 4th dimension (or a 5th, when the 4th is 1, as vector
    /// images store it) becomes the channels.
    pub fn read(path: &Path) -> Result<Volume, DatasetError> {
        let file = nifti::read(path)?;
        let (geometry, channels) = geometry_of(&file.header, path)?;
        Ok(Image {
            geometry,
            channels,
            data: file.data,
            header: file.header,
        })
    }

    /// Reads one file per channel (a datalist `image` list) and stacks them; every file must
    /// share the first one's grid.
    pub fn read_channels(paths: &[PathBuf]) -> Result<Volume, DatasetError> {
        let (first, rest) = paths.split_first().expect("at least one image path");
        let mut volume = Volume::read(first)?;
        for path in rest {
            let next = Volume::read(path)?;
            if let Some(mismatch) = volume
                .geometry
                .mismatch(&next.geometry, &GeometryTolerance::default())
            {
                return Err(DatasetError::Geometry {
                    path: path.clone(),
                    against: first.clone(),
                    mismatch: Box::new(mismatch),
                });
            }
            volume.channels += next.channels;
            volume.data.extend_from_slice(&next.data);
        }
        set_channel_dim(&mut volume.header, volume.channels);
        Ok(volume)
    }

    /// Writes the image as float32 (`.nii` or `.nii.gz`), with its header's codes and units.
    pub fn write(&self, path: &Path) -> Result<(), DatasetError> {
        Ok(nifti::write(path, &self.header, &self.data)?)
    }

    /// Checks that the values are class ids and turns the image into a label map.
    pub fn into_labels(self) -> Result<LabelVolume, LabelError> {
        if self.channels != 1 {
            return Err(LabelError::Channels {
                channels: self.channels,
            });
        }
        let scan = LabelScan::of(&self.data);
        if let Some(problem) = scan.error(self.geometry.dims) {
            return Err(problem);
        }
        let labels = self.data.iter().map(|&v| v as u16).collect();
        Ok(self.with_data(1, labels))
    }
}

impl LabelVolume {
    /// Reads a label map: one channel of non-negative integers up to 65535. Integer files
    /// (uint8, int16...) are decoded straight to ids; anything else goes through f32 and is
    /// checked voxel by voxel.
    pub fn read(path: &Path) -> Result<LabelVolume, DatasetError> {
        let raw = nifti::read_raw(path)?;
        let (geometry, channels) = geometry_of(&raw.header, path)?;
        if channels == 1
            && let Some(data) = raw.class_ids()
        {
            return Ok(Image {
                geometry,
                channels,
                data,
                header: raw.header,
            });
        }
        let file = raw.into_f32().map_err(|k| k.at(path))?;
        Image {
            geometry,
            channels,
            data: file.data,
            header: file.header,
        }
        .into_labels()
        .map_err(|kind| DatasetError::Label {
            path: path.to_path_buf(),
            kind,
        })
    }

    /// Writes the labels as uint8 when every id fits, else uint16, keeping the header.
    pub fn write(&self, path: &Path) -> Result<(), DatasetError> {
        if self.data.iter().all(|&v| v <= u8::MAX as u16) {
            let bytes: Vec<u8> = self.data.iter().map(|&v| v as u8).collect();
            write_as(path, &self.header, &bytes)
        } else {
            write_as(path, &self.header, &self.data)
        }
    }
}

fn write_as<T: NiftiElement>(
    path: &Path,
    header: &NiftiHeader,
    data: &[T],
) -> Result<(), DatasetError> {
    Ok(nifti::write(path, header, data)?)
}

/// The grid and channel count a header describes, refusing a non-invertible affine.
fn geometry_of(header: &NiftiHeader, path: &Path) -> Result<(Geometry, usize), DatasetError> {
    let (dims, channels) = split_channels(&header.dims()).map_err(|k| k.at(path))?;
    let geometry = Geometry {
        dims,
        affine: header.affine(),
    };
    if !geometry.affine.is_valid() {
        let why = format!(
            "the affine is not invertible or not finite: {:?}",
            geometry.affine.0
        );
        return Err(NiftiErrorKind::InvalidHeader(why).at(path).into());
    }
    Ok((geometry, channels))
}

fn split_channels(dims: &[usize]) -> Result<([usize; 3], usize), NiftiErrorKind> {
    let at = |i: usize| dims.get(i).copied().unwrap_or(1);
    let spatial = [at(0), at(1), at(2)];
    let extra: Vec<usize> = dims.iter().skip(3).copied().collect();
    let channels = match extra.as_slice() {
        [] => 1,
        [c] => *c,
        [1, c, rest @ ..] if rest.iter().all(|&d| d == 1) => *c,
        [c, rest @ ..] if rest.iter().all(|&d| d == 1) => *c,
        _ => {
            let why = "only a 4th (or 5th, with the 4th of size 1) dimension can hold channels";
            return Err(NiftiErrorKind::UnsupportedShape {
                dims: dims.to_vec(),
                why,
            });
        }
    };
    Ok((spatial, channels))
}

fn fresh_header(geometry: &Geometry, channels: usize, datatype: DataType) -> NiftiHeader {
    let [x, y, z] = geometry.dims;
    let dims: Vec<usize> = if channels > 1 {
        vec![x, y, z, channels]
    } else {
        vec![x, y, z]
    };
    NiftiHeader::new(&dims, datatype, &geometry.affine)
}

fn set_spatial_dims(header: &mut NiftiHeader, dims: [usize; 3]) {
    for (a, &d) in dims.iter().enumerate() {
        header.dim[a + 1] = d as i64;
    }
    header.dim[0] = header.dim[0].max(3);
}

fn set_channel_dim(header: &mut NiftiHeader, channels: usize) {
    header.dim[0] = if channels > 1 {
        4
    } else {
        header.dim[0].min(3)
    };
    header.dim[4] = channels as i64;
    for d in header.dim.iter_mut().skip(5) {
        *d = 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nifti::NiftiElement;

    /// Writes `values` (a 4x3x2 grid) as a NIfTI file of `T`'s datatype.
    fn write_grid<T: NiftiElement>(dir: &Path, name: &str, values: &[T]) -> std::path::PathBuf {
        let geometry = Geometry {
            dims: [4, 3, 2],
            affine: Affine::IDENTITY,
        };
        let template = Volume::new(geometry, 1, vec![0.0; 24]);
        let path = dir.join(name);
        nifti::write(&path, template.header(), values).unwrap();
        path
    }

    #[test]
    fn integer_label_files_decode_straight_to_the_same_ids() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<u16> = (0..24).map(|i| (i % 5) as u16 * 300).collect();
        let small: Vec<u8> = (0..24).map(|i| (i % 3) as u8).collect();
        let signed: Vec<i16> = ids.iter().map(|&v| v as i16).collect();
        for path in [
            write_grid(dir.path(), "u16.nii.gz", &ids),
            write_grid(dir.path(), "i16.nii", &signed),
            write_grid(dir.path(), "u8.nii.gz", &small),
        ] {
            let fast = LabelVolume::read(&path).unwrap();
            let slow = Volume::read(&path).unwrap().into_labels().unwrap();
            assert_eq!(fast.data(), slow.data(), "{}", path.display());
            assert_eq!(fast.geometry(), slow.geometry());
        }
    }

    #[test]
    fn a_negative_id_in_an_integer_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut values = vec![0i16; 24];
        values[5] = -2;
        let path = write_grid(dir.path(), "neg.nii.gz", &values);
        let err = LabelVolume::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("neg.nii.gz") && err.contains("negative"),
            "{err}"
        );
    }
}

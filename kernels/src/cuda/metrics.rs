//! Overlap and surface metrics on the GPU: the confusion matrix, surfaces and their distances.

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::{BLOCK, CudaError, Gpu, grid};
use crate::overlap::ConfusionMatrix;
use crate::surface::{SurfaceDistances, SurfaceEngine};

impl Gpu {
    /// [`ConfusionMatrix::of`] on the GPU (up to 64 classes: the table lives in shared memory).
    pub fn confusion_matrix(
        &self,
        pred: &[u16],
        reference: &[u16],
        classes: usize,
    ) -> Result<ConfusionMatrix, CudaError> {
        if pred.len() != reference.len() {
            return Err(CudaError::Unsupported(
                "label maps of different sizes".into(),
            ));
        }
        if classes == 0 || classes > 64 {
            return Err(CudaError::Unsupported(format!(
                "{classes} classes: the GPU path takes 1 to 64"
            )));
        }
        if let Some(&bad) = pred
            .iter()
            .chain(reference)
            .find(|&&l| l as usize >= classes)
        {
            return Err(CudaError::Unsupported(format!(
                "label id {bad} past {classes} classes"
            )));
        }
        let (p, r) = (
            self.stream.clone_htod(pred)?,
            self.stream.clone_htod(reference)?,
        );
        let mut counts = self.stream.alloc_zeros::<u64>(classes * classes)?;
        let (n, k) = (pred.len() as u64, classes as u32);
        let config = LaunchConfig {
            grid_dim: (n.div_ceil(BLOCK as u64 * 16).clamp(1, 4096) as u32, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: k * k * 8,
        };
        let f = self.function("confusion_counts")?;
        let mut launch = self.stream.launch_builder(&f);
        launch.arg(&p).arg(&r).arg(&n).arg(&k).arg(&mut counts);
        // SAFETY: the arguments match the kernel's signature; buffers are sized above.
        unsafe { launch.launch(config) }?;
        Ok(ConfusionMatrix::from_counts(
            classes,
            self.stream.clone_dtoh(&counts)?,
        ))
    }

    /// [`crate::surface`] on the GPU.
    pub fn surface(&self, mask: &[bool], dims: [usize; 3]) -> Result<Vec<bool>, CudaError> {
        if mask.len() != dims.iter().product::<usize>() {
            return Err(CudaError::Unsupported(format!(
                "mask does not fill dims {dims:?}"
            )));
        }
        let bytes: Vec<u8> = mask.iter().map(|&m| m as u8).collect();
        let input = self.stream.clone_htod(&bytes)?;
        let mut out = self.stream.alloc_zeros::<u8>(bytes.len())?;
        let [nx, ny, nz] = dims.map(|v| v as u64);
        let f = self.function("surface_mask")?;
        let mut launch = self.stream.launch_builder(&f);
        launch.arg(&input).arg(&mut out).arg(&nx).arg(&ny).arg(&nz);
        // SAFETY: as above.
        unsafe { launch.launch(grid(bytes.len() as u64)) }?;
        Ok(self
            .stream
            .clone_dtoh(&out)?
            .into_iter()
            .map(|b| b != 0)
            .collect())
    }

    /// [`SurfaceDistances::between`] with the surfaces and distance transforms on the GPU.
    pub fn surface_distances(
        &self,
        pred: &[bool],
        reference: &[bool],
        dims: [usize; 3],
        spacing: [f64; 3],
    ) -> Result<SurfaceDistances, CudaError> {
        let engine = SurfaceEngine {
            surface: |m: &[bool], d| self.surface(m, d),
            squared_distance_to: |m: &[bool], d, s| self.squared_distance_to(m, d, s),
        };
        SurfaceDistances::between_using(pred, reference, dims, spacing, &engine)
    }
}

//! Connected components on the GPU.

use cudarc::driver::PushKernelArg;

use super::{CudaError, Gpu, grid};
use crate::components::{Components, Connectivity};

impl Gpu {
    /// [`crate::label_components`] on the GPU (union-find over voxels; numbered on the host).
    pub fn label_components(
        &self,
        labels: &[u16],
        dims: [usize; 3],
        connectivity: Connectivity,
    ) -> Result<Components, CudaError> {
        let n = labels.len();
        if n != dims.iter().product::<usize>() || n >= u32::MAX as usize {
            return Err(CudaError::Unsupported(format!(
                "labels do not fill dims {dims:?} (or exceed 2^32 voxels)"
            )));
        }
        let input = self.stream.clone_htod(labels)?;
        let mut parent = self.stream.alloc_zeros::<u32>(n)?;
        let (n64, [nx, ny, nz]) = (n as u64, dims.map(|v| v as u64));
        let full = u32::from(connectivity == Connectivity::TwentySix);
        let init = self.function("cc_init")?;
        let mut launch = self.stream.launch_builder(&init);
        launch.arg(&mut parent).arg(&n64);
        // SAFETY: as above.
        unsafe { launch.launch(grid(n64)) }?;
        let merge = self.function("cc_merge")?;
        let mut launch = self.stream.launch_builder(&merge);
        launch
            .arg(&input)
            .arg(&mut parent)
            .arg(&nx)
            .arg(&ny)
            .arg(&nz)
            .arg(&full);
        // SAFETY: as above.
        unsafe { launch.launch(grid(n64)) }?;
        let flatten = self.function("cc_flatten")?;
        let mut launch = self.stream.launch_builder(&flatten);
        launch.arg(&mut parent).arg(&n64);
        // SAFETY: as above.
        unsafe { launch.launch(grid(n64)) }?;
        let roots = self.stream.clone_dtoh(&parent)?;
        Ok(Components::from_roots(labels, dims, &roots))
    }
}

//! The squared Euclidean distance transform on the GPU.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::{CudaError, Gpu, grid};

impl Gpu {
    /// [`crate::squared_distance_to`] on the GPU: one thread per line, axis by axis.
    pub fn squared_distance_to(
        &self,
        feature: &[bool],
        dims: [usize; 3],
        spacing: [f64; 3],
    ) -> Result<Vec<f64>, CudaError> {
        let [nx, ny, nz] = dims;
        if feature.len() != nx * ny * nz {
            return Err(CudaError::Unsupported(format!(
                "mask does not fill dims {dims:?}"
            )));
        }
        let host: Vec<f64> = feature
            .iter()
            .map(|&f| if f { 0.0 } else { f64::INFINITY })
            .collect();
        if host.is_empty() {
            return Ok(host);
        }
        let mut d = self.stream.clone_htod(&host)?;
        let f = self.function("edt_lines")?;
        for axis in 0..3u32 {
            let n = dims[axis as usize];
            let lines = (host.len() / n) as u64;
            let mut v: CudaSlice<i32> = self.stream.alloc_zeros(lines as usize * n)?;
            let mut z: CudaSlice<f64> = self.stream.alloc_zeros(lines as usize * (n + 1))?;
            let mut scratch: CudaSlice<f64> = self.stream.alloc_zeros(lines as usize * n)?;
            let (n32, nx64, ny64, s) = (n as u32, nx as u64, ny as u64, spacing[axis as usize]);
            let mut launch = self.stream.launch_builder(&f);
            launch
                .arg(&mut d)
                .arg(&lines)
                .arg(&n32)
                .arg(&axis)
                .arg(&nx64)
                .arg(&ny64)
                .arg(&s);
            launch.arg(&mut v).arg(&mut z).arg(&mut scratch);
            // SAFETY: as above; scratch holds n (v, f) and n + 1 (z) entries per line.
            unsafe { launch.launch(grid(lines)) }?;
        }
        Ok(self.stream.clone_dtoh(&d)?)
    }
}

//! Sliding-window sums kept on the GPU.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::{CudaError, Gpu, grid};
use crate::blend::{Window, WindowShape};

impl Gpu {
    /// Sliding-window blending on the GPU: sums and weights stay on the device until
    /// [`GpuWindowAccumulator::finish`].
    pub fn window_accumulator(
        &self,
        dims: [usize; 3],
        channels: usize,
    ) -> Result<GpuWindowAccumulator<'_>, CudaError> {
        let volume: usize = dims.iter().product();
        Ok(GpuWindowAccumulator {
            gpu: self,
            shape: WindowShape { dims, channels },
            sum: self.stream.alloc_zeros(volume * channels)?,
            weight: self.stream.alloc_zeros(volume)?,
        })
    }
}

/// [`crate::WindowAccumulator`] with its buffers on a GPU.
pub struct GpuWindowAccumulator<'a> {
    gpu: &'a Gpu,
    shape: WindowShape,
    sum: CudaSlice<f32>,
    weight: CudaSlice<f32>,
}

impl GpuWindowAccumulator<'_> {
    /// As [`crate::WindowAccumulator::add`]; the window's buffers are copied to the GPU.
    pub fn add(&mut self, w: &Window) -> Result<(), CudaError> {
        self.shape.check(w).map_err(CudaError::Unsupported)?;
        let (origin, window, values, importance) = (w.origin, w.size, w.values, w.importance);
        let n_window: usize = window.iter().product();
        let stream = &self.gpu.stream;
        let (values, importance) = (stream.clone_htod(values)?, stream.clone_htod(importance)?);
        let [ox, oy, oz] = origin.map(|v| v as u64);
        let [wx, wy, wz] = window.map(|v| v as u64);
        let [nx, ny, nz] = self.shape.dims.map(|v| v as u64);
        let channels = self.shape.channels as u32;
        let f = self.gpu.function("accumulate_window")?;
        let mut launch = stream.launch_builder(&f);
        launch
            .arg(&mut self.sum)
            .arg(&mut self.weight)
            .arg(&values)
            .arg(&importance);
        launch.arg(&ox).arg(&oy).arg(&oz).arg(&wx).arg(&wy).arg(&wz);
        launch.arg(&nx).arg(&ny).arg(&nz).arg(&channels);
        // SAFETY: as above; the window lies inside the volume (checked).
        unsafe { launch.launch(grid(n_window as u64)) }?;
        Ok(())
    }

    /// The weighted means, channel-major (0 where no window reached).
    pub fn finish(mut self) -> Result<Vec<f32>, CudaError> {
        let volume = self.shape.dims.iter().product::<usize>() as u64;
        let channels = self.shape.channels as u32;
        let f = self.gpu.function("normalize_windows")?;
        let mut launch = self.gpu.stream.launch_builder(&f);
        launch
            .arg(&mut self.sum)
            .arg(&self.weight)
            .arg(&volume)
            .arg(&channels);
        // SAFETY: as above.
        unsafe { launch.launch(grid(volume * channels as u64)) }?;
        Ok(self.gpu.stream.clone_dtoh(&self.sum)?)
    }
}

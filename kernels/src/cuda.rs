//! The CUDA paths (feature `cuda`): cudarc with the driver and NVRTC loaded at run time, so a
//! build with the feature still runs, and says why, on a machine without a GPU.
//!
//! The kernels (`cuda/kernels.cu`) are compiled to PTX by NVRTC when a [`Gpu`] is made; each
//! mirrors a CPU routine of this crate and must agree with it (`tests/cuda.rs`).

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{CompileOptions, Ptx, compile_ptx_with_opts};

use crate::blend::{Window, WindowShape};
use crate::overlap::ConfusionMatrix;

/// The kernels' CUDA C source.
pub const SOURCE: &str = include_str!("cuda/kernels.cu");

const BLOCK: u32 = 256;

/// Why a CUDA path cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    #[error(
        "no CUDA driver (libcuda.so) on this machine: the GPU paths need an NVIDIA GPU and its driver"
    )]
    NoDriver,
    #[error(
        "NVRTC (libnvrtc.so) was not found: `pip install nvidia-cuda-nvrtc-cu12` and put its \
         nvidia/cuda_nvrtc/lib folder on LD_LIBRARY_PATH"
    )]
    NoNvrtc,
    #[error("compiling the CUDA kernels: {0}")]
    Compile(String),
    #[error("CUDA driver: {0}")]
    Driver(#[from] cudarc::driver::DriverError),
    #[error("{0}")]
    Unsupported(String),
}

/// Compiles the kernels to PTX (needs NVRTC only, no GPU). Fused multiply-adds are off so the
/// results match the CPU routines bit for bit where the arithmetic is the same.
pub fn compile() -> Result<Ptx, CudaError> {
    // SAFETY: only probes whether the library can be loaded.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(CudaError::NoNvrtc);
    }
    let options = CompileOptions {
        fmad: Some(false),
        name: Some("autoseg_kernels.cu".into()),
        ..CompileOptions::default()
    };
    compile_ptx_with_opts(SOURCE, options).map_err(|e| CudaError::Compile(format!("{e:?}")))
}

/// One GPU with the kernels loaded.
pub struct Gpu {
    stream: Arc<CudaStream>,
    module: Arc<CudaModule>,
}

fn grid(n: u64) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(BLOCK as u64).max(1) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl Gpu {
    /// Opens GPU `ordinal` and compiles the kernels for it.
    pub fn new(ordinal: usize) -> Result<Gpu, CudaError> {
        // SAFETY: only probes whether the library can be loaded.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(CudaError::NoDriver);
        }
        let ctx = CudaContext::new(ordinal)?;
        let module = ctx.load_module(compile()?)?;
        Ok(Gpu {
            stream: ctx.default_stream(),
            module,
        })
    }

    fn function(&self, name: &str) -> Result<CudaFunction, CudaError> {
        Ok(self.module.load_function(name)?)
    }

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

//! The CUDA paths (feature `cuda`): cudarc with the driver and NVRTC loaded at run time, so a
//! build with the feature still runs, and says why, on a machine without a GPU.
//!
//! The kernels (`cuda/kernels.cu`) are compiled to PTX by NVRTC when a [`Gpu`] is made; each
//! mirrors a CPU routine of this crate and must agree with it (`tests/cuda.rs`).
//!
//! One module per algorithm, as on the CPU side: each adds its methods to [`Gpu`].

mod bilateral;
mod blend;
mod components;
mod crf;
mod distance;
mod metrics;
mod resample;

pub use blend::GpuWindowAccumulator;

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, LaunchConfig};
use cudarc::nvrtc::{CompileOptions, Ptx, compile_ptx_with_opts};

/// The kernels' CUDA C source.
pub const SOURCE: &str = include_str!("kernels.cu");

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
/// results match the CPU routines bit for bit where the arithmetic is the same. The target is
/// compute 7.0 (Volta and later: double-precision atomics), which the driver compiles on for
/// the GPU at hand.
pub fn compile() -> Result<Ptx, CudaError> {
    // SAFETY: only probes whether the library can be loaded.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(CudaError::NoNvrtc);
    }
    let options = CompileOptions {
        fmad: Some(false),
        arch: Some("compute_70"),
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
}

//! Where a stage runs the kernels: the CPU, or a CUDA GPU through the `cuda` paths (feature
//! `cuda`; MONAI's analyzer and metrics run on the GPU by default). Each entry point here
//! gives the CPU routine's result: the GPU twins agree with them (`tests/cuda.rs`), and a GPU
//! call that fails is done on the CPU instead, said once on stderr.

use crate::components::{Components, Connectivity, label_components};
use crate::overlap::ConfusionMatrix;
use crate::surface::SurfaceDistances;

/// The device a stage's kernels run on.
#[derive(Clone, Default)]
pub enum KernelDevice {
    /// The CPU (rayon).
    #[default]
    Cpu,
    /// A CUDA GPU, shared by the threads that work side by side.
    #[cfg(feature = "cuda")]
    Gpu(std::sync::Arc<gpu::Shared>),
}

/// A device name the kernels cannot use.
#[derive(Debug, thiserror::Error)]
pub enum KernelDeviceError {
    /// Not `cpu` or `cuda:N`.
    #[error("unknown device `{0}`: use cpu or cuda:N")]
    Unknown(String),
    /// A GPU in a build without the CUDA paths.
    #[error("device `{0}` needs the CUDA kernels: rebuild autoseg with `--features cuda`")]
    NeedsCuda(String),
    /// The GPU could not be opened.
    #[error("device `{device}` cannot be used: {reason}")]
    Unavailable {
        /// The device named.
        device: String,
        /// Why (no driver, no such GPU, NVRTC missing...).
        reason: String,
    },
}

impl std::fmt::Debug for KernelDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for KernelDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelDevice::Cpu => f.write_str("cpu"),
            #[cfg(feature = "cuda")]
            KernelDevice::Gpu(shared) => write!(f, "cuda:{}", shared.ordinal),
        }
    }
}

impl KernelDevice {
    /// The device of a name: `cpu`, or `cuda:N` (`cuda` for the first GPU).
    pub fn open(name: &str) -> Result<KernelDevice, KernelDeviceError> {
        let lower = name.trim().to_ascii_lowercase();
        let ordinal = match lower.as_str() {
            "cpu" => return Ok(KernelDevice::Cpu),
            "cuda" | "gpu" => 0,
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => n,
                _ => return Err(KernelDeviceError::Unknown(name.to_string())),
            },
        };
        Self::open_gpu(name, ordinal)
    }

    /// Whether the kernels run on a GPU.
    pub fn is_gpu(&self) -> bool {
        !matches!(self, KernelDevice::Cpu)
    }

    #[cfg(feature = "cuda")]
    fn open_gpu(name: &str, ordinal: usize) -> Result<KernelDevice, KernelDeviceError> {
        let gpu = crate::cuda::Gpu::new(ordinal).map_err(|e| KernelDeviceError::Unavailable {
            device: name.to_string(),
            reason: e.to_string(),
        })?;
        Ok(KernelDevice::Gpu(std::sync::Arc::new(gpu::Shared::new(
            gpu, ordinal,
        ))))
    }

    #[cfg(not(feature = "cuda"))]
    fn open_gpu(name: &str, _ordinal: usize) -> Result<KernelDevice, KernelDeviceError> {
        Err(KernelDeviceError::NeedsCuda(name.to_string()))
    }

    /// [`ConfusionMatrix::of`].
    pub fn confusion_matrix(
        &self,
        pred: &[u16],
        reference: &[u16],
        classes: usize,
    ) -> ConfusionMatrix {
        let cpu = || ConfusionMatrix::of(pred, reference, classes);
        match self {
            KernelDevice::Cpu => cpu(),
            #[cfg(feature = "cuda")]
            KernelDevice::Gpu(shared) => {
                shared.or_cpu(|gpu| gpu.confusion_matrix(pred, reference, classes), cpu)
            }
        }
    }

    /// [`SurfaceDistances::between`].
    pub fn surface_distances(
        &self,
        pred: &[bool],
        reference: &[bool],
        dims: [usize; 3],
        spacing: [f64; 3],
    ) -> SurfaceDistances {
        let cpu = || SurfaceDistances::between(pred, reference, dims, spacing);
        match self {
            KernelDevice::Cpu => cpu(),
            #[cfg(feature = "cuda")]
            KernelDevice::Gpu(shared) => shared.or_cpu(
                |gpu| gpu.surface_distances(pred, reference, dims, spacing),
                cpu,
            ),
        }
    }

    /// [`label_components`].
    pub fn label_components(
        &self,
        labels: &[u16],
        dims: [usize; 3],
        connectivity: Connectivity,
    ) -> Components {
        let cpu = || label_components(labels, dims, connectivity);
        match self {
            KernelDevice::Cpu => cpu(),
            #[cfg(feature = "cuda")]
            KernelDevice::Gpu(shared) => {
                shared.or_cpu(|gpu| gpu.label_components(labels, dims, connectivity), cpu)
            }
        }
    }
}

#[cfg(feature = "cuda")]
mod gpu {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::cuda::{CudaError, Gpu};

    /// One GPU for the threads of a stage: one call at a time on its stream.
    pub struct Shared {
        gpu: Mutex<Gpu>,
        pub(super) ordinal: usize,
        warned: AtomicBool,
    }

    impl Shared {
        pub(super) fn new(gpu: Gpu, ordinal: usize) -> Self {
            Shared {
                gpu: Mutex::new(gpu),
                ordinal,
                warned: AtomicBool::new(false),
            }
        }

        /// `on_gpu`, or `on_cpu` where the GPU fails (said once).
        pub(super) fn or_cpu<T>(
            &self,
            on_gpu: impl FnOnce(&Gpu) -> Result<T, CudaError>,
            on_cpu: impl FnOnce() -> T,
        ) -> T {
            let result = {
                let gpu = self.gpu.lock().unwrap_or_else(|e| e.into_inner());
                on_gpu(&gpu)
            };
            result.unwrap_or_else(|e| {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    eprintln!("  cuda:{}: {e}; computed on the CPU instead", self.ordinal);
                }
                on_cpu()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_read_or_refused() {
        assert!(matches!(KernelDevice::open("cpu"), Ok(KernelDevice::Cpu)));
        assert!(matches!(
            KernelDevice::open("tpu"),
            Err(KernelDeviceError::Unknown(_))
        ));
        // A GPU is refused for want of the feature or of a GPU, never with a panic.
        let gpu = KernelDevice::open("cuda:0");
        if cfg!(not(feature = "cuda")) {
            assert!(matches!(gpu, Err(KernelDeviceError::NeedsCuda(_))));
        }
    }

    #[test]
    fn the_cpu_gives_the_kernels_results() {
        let pred = [0u16, 1, 1, 0, 1, 0, 0, 1];
        let reference = [0u16, 1, 0, 0, 1, 1, 0, 1];
        let cpu = KernelDevice::Cpu;
        let confusion = cpu.confusion_matrix(&pred, &reference, 2);
        assert_eq!(confusion.dice(1), 0.75);
        let (p, r): (Vec<bool>, Vec<bool>) = (
            pred.iter().map(|&v| v == 1).collect(),
            reference.iter().map(|&v| v == 1).collect(),
        );
        let got = cpu.surface_distances(&p, &r, [2, 2, 2], [1.0; 3]);
        let want = SurfaceDistances::between(&p, &r, [2, 2, 2], [1.0; 3]);
        assert_eq!(got.hausdorff(Some(95.0)), want.hausdorff(Some(95.0)));
        let components = cpu.label_components(&pred, [2, 2, 2], Connectivity::TwentySix);
        assert_eq!(
            components,
            label_components(&pred, [2, 2, 2], Connectivity::TwentySix)
        );
    }
}

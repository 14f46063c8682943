//! Where `evaluate` computes its confusion matrices and surface distances: on the CPU, or
//! on a CUDA GPU through the kernels' cudarc paths (feature `cuda`; MONAI computes its
//! metrics on the GPU by default). Both give the same figures (the kernels' CUDA tests
//! compare each kernel with its CPU twin); a GPU call that fails falls back to the CPU for
//! that call, and says so once.

use autoseg_kernels::overlap::ConfusionMatrix;
use autoseg_kernels::surface::SurfaceDistances;

/// The device metrics run on.
#[derive(Clone, Default)]
pub enum MetricEngine {
    /// The CPU (rayon).
    #[default]
    Cpu,
    /// A CUDA GPU, shared by the threads that evaluate cases side by side.
    #[cfg(feature = "cuda")]
    Gpu(std::sync::Arc<gpu::Shared>),
}

impl std::fmt::Debug for MetricEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl std::fmt::Display for MetricEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricEngine::Cpu => f.write_str("cpu"),
            #[cfg(feature = "cuda")]
            MetricEngine::Gpu(shared) => write!(f, "cuda:{}", shared.ordinal),
        }
    }
}

/// A device name `evaluate` cannot use.
#[derive(Debug, thiserror::Error)]
pub enum MetricEngineError {
    /// Not `cpu` or `cuda:N`.
    #[error("unknown device `{0}`: use cpu or cuda:N")]
    Unknown(String),
    /// A GPU in a build without the kernels' CUDA paths.
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

impl MetricEngine {
    /// The engine for a device name: `cpu`, or `cuda:N` (`cuda` for the first GPU).
    pub fn open(name: &str) -> Result<MetricEngine, MetricEngineError> {
        let lower = name.trim().to_ascii_lowercase();
        let ordinal = match lower.as_str() {
            "cpu" => return Ok(MetricEngine::Cpu),
            "cuda" | "gpu" => 0,
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => n,
                _ => return Err(MetricEngineError::Unknown(name.to_string())),
            },
        };
        Self::open_gpu(name, ordinal)
    }

    #[cfg(feature = "cuda")]
    fn open_gpu(name: &str, ordinal: usize) -> Result<MetricEngine, MetricEngineError> {
        let gpu = autoseg_kernels::cuda::Gpu::new(ordinal).map_err(|e| {
            MetricEngineError::Unavailable {
                device: name.to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(MetricEngine::Gpu(std::sync::Arc::new(gpu::Shared::new(
            gpu, ordinal,
        ))))
    }

    #[cfg(not(feature = "cuda"))]
    fn open_gpu(name: &str, _ordinal: usize) -> Result<MetricEngine, MetricEngineError> {
        Err(MetricEngineError::NeedsCuda(name.to_string()))
    }

    /// The confusion matrix of two label maps of `classes` classes.
    pub fn confusion(&self, pred: &[u16], reference: &[u16], classes: usize) -> ConfusionMatrix {
        match self {
            MetricEngine::Cpu => ConfusionMatrix::of(pred, reference, classes),
            #[cfg(feature = "cuda")]
            MetricEngine::Gpu(shared) => shared.or_cpu(
                |gpu| gpu.confusion_matrix(pred, reference, classes),
                || ConfusionMatrix::of(pred, reference, classes),
            ),
        }
    }

    /// The surface distances between two masks of `dims` voxels of `spacing` mm.
    pub fn surface_distances(
        &self,
        pred: &[bool],
        reference: &[bool],
        dims: [usize; 3],
        spacing: [f64; 3],
    ) -> SurfaceDistances {
        match self {
            MetricEngine::Cpu => SurfaceDistances::between(pred, reference, dims, spacing),
            #[cfg(feature = "cuda")]
            MetricEngine::Gpu(shared) => shared.or_cpu(
                |gpu| gpu.surface_distances(pred, reference, dims, spacing),
                || SurfaceDistances::between(pred, reference, dims, spacing),
            ),
        }
    }
}

#[cfg(feature = "cuda")]
mod gpu {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use autoseg_kernels::cuda::{CudaError, Gpu};

    /// One GPU for the threads of an evaluation: one call at a time on its stream.
    pub struct Shared {
        gpu: Mutex<Gpu>,
        pub(super) ordinal: usize,
        warned: AtomicBool,
    }

    impl Shared {
        pub fn new(gpu: Gpu, ordinal: usize) -> Self {
            Shared {
                gpu: Mutex::new(gpu),
                ordinal,
                warned: AtomicBool::new(false),
            }
        }

        /// `on_gpu`, or `on_cpu` where the GPU fails (said once).
        pub fn or_cpu<T>(
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
        assert!(matches!(MetricEngine::open("cpu"), Ok(MetricEngine::Cpu)));
        assert!(matches!(
            MetricEngine::open("tpu"),
            Err(MetricEngineError::Unknown(_))
        ));
        // A GPU: refused for want of the feature, or of a GPU; never a panic.
        let err = MetricEngine::open("cuda:0").err();
        if cfg!(not(feature = "cuda")) {
            assert!(matches!(err, Some(MetricEngineError::NeedsCuda(_))));
        }
    }

    #[test]
    fn the_cpu_engine_measures_as_the_kernels_do() {
        let pred = [0u16, 1, 1, 0, 1, 0, 0, 1];
        let reference = [0u16, 1, 0, 0, 1, 1, 0, 1];
        let engine = MetricEngine::Cpu;
        let confusion = engine.confusion(&pred, &reference, 2);
        assert_eq!(
            confusion.dice(1),
            ConfusionMatrix::of(&pred, &reference, 2).dice(1)
        );
        let (p, r): (Vec<bool>, Vec<bool>) = (
            pred.iter().map(|&v| v == 1).collect(),
            reference.iter().map(|&v| v == 1).collect(),
        );
        let got = engine.surface_distances(&p, &r, [2, 2, 2], [1.0; 3]);
        let want = SurfaceDistances::between(&p, &r, [2, 2, 2], [1.0; 3]);
        assert_eq!(got.hausdorff(Some(95.0)), want.hausdorff(Some(95.0)));
    }
}

//! Gaussian mixtures on the GPU: the E step of fitting, and classification.

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::{BLOCK, CudaError, Gpu, grid};
use crate::gmm::{GaussianMixture, Moments};

impl Gpu {
    /// [`GaussianMixture::fit`] with the E step on the GPU (up to 16 components).
    pub fn gmm_fit(
        &self,
        values: &[f32],
        k: usize,
        max_iterations: usize,
        tolerance: f64,
    ) -> Result<GaussianMixture, CudaError> {
        if k == 0 || k > 16 || values.len() < k {
            return Err(CudaError::Unsupported(format!(
                "{k} components for {} values: the GPU path takes 1 to 16",
                values.len()
            )));
        }
        let input = self.stream.clone_htod(values)?;
        let f = self.function("gmm_estep")?;
        let (n, k32) = (values.len() as u64, k as u32);
        let config = LaunchConfig {
            grid_dim: (n.div_ceil(BLOCK as u64 * 64).clamp(1, 1024) as u32, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        GaussianMixture::fit_with(values, k, max_iterations, tolerance, |model| {
            let log_weights: Vec<f64> = model.weights.iter().map(|w| w.ln()).collect();
            let lw = self.stream.clone_htod(&log_weights)?;
            let means = self.stream.clone_htod(&model.means)?;
            let variances = self.stream.clone_htod(&model.variances)?;
            let mut stats = self.stream.alloc_zeros::<f64>(3 * k + 1)?;
            let mut launch = self.stream.launch_builder(&f);
            launch
                .arg(&input)
                .arg(&n)
                .arg(&k32)
                .arg(&lw)
                .arg(&means)
                .arg(&variances)
                .arg(&mut stats);
            // SAFETY: as above; `stats` holds 3k + 1 sums.
            unsafe { launch.launch(config) }?;
            let host = self.stream.clone_dtoh(&stats)?;
            Ok::<_, CudaError>(Moments {
                r: host[..k].to_vec(),
                rx: host[k..2 * k].to_vec(),
                rxx: host[2 * k..3 * k].to_vec(),
                log_likelihood: host[3 * k],
            })
        })
    }

    /// [`GaussianMixture::classify`] on the GPU.
    pub fn gmm_classify(
        &self,
        model: &GaussianMixture,
        values: &[f32],
    ) -> Result<Vec<u16>, CudaError> {
        let log_weights: Vec<f64> = model.weights.iter().map(|w| w.ln()).collect();
        let (lw, means, variances) = (
            self.stream.clone_htod(&log_weights)?,
            self.stream.clone_htod(&model.means)?,
            self.stream.clone_htod(&model.variances)?,
        );
        let input = self.stream.clone_htod(values)?;
        let mut out = self.stream.alloc_zeros::<u16>(values.len())?;
        let (n, k) = (values.len() as u64, model.means.len() as u32);
        let f = self.function("gmm_classify")?;
        let mut launch = self.stream.launch_builder(&f);
        launch
            .arg(&input)
            .arg(&mut out)
            .arg(&n)
            .arg(&k)
            .arg(&lw)
            .arg(&means)
            .arg(&variances);
        // SAFETY: as above; the parameter buffers hold k entries each.
        unsafe { launch.launch(grid(n)) }?;
        Ok(self.stream.clone_dtoh(&out)?)
    }
}

//! The dense CRF on the GPU.

use cudarc::driver::PushKernelArg;

use super::{CudaError, Gpu, grid};
use crate::bilateral::GridLayout;
use crate::crf::{CrfParams, gaussian_taps};

impl Gpu {
    /// [`crate::dense_crf`] on the GPU: every buffer stays on the device between iterations.
    pub fn dense_crf(
        &self,
        scores: &[f32],
        image: &[f32],
        dims: [usize; 3],
        classes: usize,
        params: &CrfParams,
    ) -> Result<Vec<f32>, CudaError> {
        let n = image.len();
        if n != dims.iter().product::<usize>() || scores.len() != n * classes {
            return Err(CudaError::Unsupported(format!(
                "scores are not {classes} maps of the image"
            )));
        }
        let layout = GridLayout::new(image, dims, params.bilateral);
        let (unary, guide) = (
            self.stream.clone_htod(scores)?,
            self.stream.clone_htod(image)?,
        );
        let mut output = self.stream.clone_htod(scores)?;
        let mut probabilities = self.stream.alloc_zeros::<f32>(n * classes)?;
        let taps = self
            .stream
            .clone_htod(&gaussian_taps(params.gaussian_sigma))?;
        let ones = self.stream.clone_htod(&vec![1f32; n])?;
        let mut blurred_ones = self.stream.alloc_zeros::<f32>(n)?;
        self.gaussian_passes(&ones.slice(..), dims, &taps, &mut blurred_ones)?;
        let (mut appearance, mut blurred) = (
            self.stream.alloc_zeros::<f32>(n)?,
            self.stream.alloc_zeros::<f32>(n)?,
        );
        let (softmax, combine) = (
            self.function("softmax_classes")?,
            self.function("crf_combine")?,
        );
        let (n64, k) = (n as u64, classes as u32);
        let (w_app, w_smooth, update) = (
            params.bilateral_weight,
            params.gaussian_weight,
            params.update_factor,
        );
        for _ in 0..params.iterations {
            let mut launch = self.stream.launch_builder(&softmax);
            launch
                .arg(&output)
                .arg(&mut probabilities)
                .arg(&n64)
                .arg(&k);
            // SAFETY: as above.
            unsafe { launch.launch(grid(n64)) }?;
            for c in 0..classes {
                let class = probabilities.slice(c * n..(c + 1) * n);
                self.grid_filter(&class, &guide, &layout, &mut appearance)?;
                self.gaussian_passes(&class, dims, &taps, &mut blurred)?;
                let unary_c = unary.slice(c * n..(c + 1) * n);
                let mut output_c = output.slice_mut(c * n..(c + 1) * n);
                let mut launch = self.stream.launch_builder(&combine);
                launch
                    .arg(&unary_c)
                    .arg(&appearance)
                    .arg(&blurred)
                    .arg(&blurred_ones)
                    .arg(&mut output_c);
                launch.arg(&n64).arg(&w_app).arg(&w_smooth).arg(&update);
                // SAFETY: as above; every buffer holds n values.
                unsafe { launch.launch(grid(n64)) }?;
            }
        }
        Ok(self.stream.clone_dtoh(&output)?)
    }
}

//! The cross-bilateral filter on the GPU, by a permutohedral-free grid.

use cudarc::driver::{CudaSlice, CudaView, PushKernelArg};

use super::{CudaError, Gpu, grid};
use crate::bilateral::{BilateralSigmas, GridLayout, PAD};

impl Gpu {
    /// [`crate::cross_bilateral_grid`] on the GPU (the splat adds with atomics, so its float
    /// sums may differ from the CPU's in the last bits).
    pub fn cross_bilateral_grid(
        &self,
        values: &[f32],
        guide: &[f32],
        dims: [usize; 3],
        sigmas: BilateralSigmas,
    ) -> Result<Vec<f32>, CudaError> {
        if values.len() != guide.len() || guide.len() != dims.iter().product::<usize>() {
            return Err(CudaError::Unsupported(
                "values, guide and dims disagree in size".into(),
            ));
        }
        let layout = GridLayout::new(guide, dims, sigmas);
        let (v, gd) = (
            self.stream.clone_htod(values)?,
            self.stream.clone_htod(guide)?,
        );
        let mut out = self.stream.alloc_zeros::<f32>(guide.len())?;
        self.grid_filter(&v.slice(..), &gd, &layout, &mut out)?;
        Ok(self.stream.clone_dtoh(&out)?)
    }

    /// The bilateral grid on device buffers: `values` guided by `guide`, into `out`.
    pub(super) fn grid_filter(
        &self,
        values: &CudaView<'_, f32>,
        guide: &CudaSlice<f32>,
        layout: &GridLayout,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        let cells = layout.cells();
        let mut sum = self.stream.alloc_zeros::<f32>(cells)?;
        let mut count = self.stream.alloc_zeros::<f32>(cells)?;
        let [nx, ny, _] = layout.dims.map(|v| v as u64);
        let n = guide.len() as u64;
        let (lo, ss, sr, pad) = (
            layout.lo,
            layout.sigmas.spatial,
            layout.sigmas.range,
            PAD as f64,
        );
        let [g0, g1, g2, _] = layout.g.map(|v| v as u64);
        let f = self.function("grid_splat")?;
        let mut launch = self.stream.launch_builder(&f);
        launch
            .arg(values)
            .arg(guide)
            .arg(&n)
            .arg(&nx)
            .arg(&ny)
            .arg(&lo)
            .arg(&ss)
            .arg(&sr)
            .arg(&pad);
        launch
            .arg(&g0)
            .arg(&g1)
            .arg(&g2)
            .arg(&mut sum)
            .arg(&mut count);
        // SAFETY: the arguments match the kernel's signature; the grid holds every cell index.
        unsafe { launch.launch(grid(n)) }?;
        let blur = self.function("grid_blur")?;
        let mut scratch = self.stream.alloc_zeros::<f32>(cells)?;
        for buffer in [&mut sum, &mut count] {
            for axis in 0..4 {
                let stride = layout.g[..axis].iter().product::<usize>() as u64;
                let (total, length) = (cells as u64, layout.g[axis] as u64);
                let mut launch = self.stream.launch_builder(&blur);
                launch
                    .arg(&*buffer)
                    .arg(&mut scratch)
                    .arg(&total)
                    .arg(&stride)
                    .arg(&length);
                // SAFETY: as above; source and destination are distinct buffers of `cells`.
                unsafe { launch.launch(grid(total)) }?;
                std::mem::swap(buffer, &mut scratch);
            }
        }
        let f = self.function("grid_slice")?;
        let mut launch = self.stream.launch_builder(&f);
        launch
            .arg(values)
            .arg(guide)
            .arg(out)
            .arg(&n)
            .arg(&nx)
            .arg(&ny)
            .arg(&lo)
            .arg(&ss)
            .arg(&sr);
        launch
            .arg(&pad)
            .arg(&g0)
            .arg(&g1)
            .arg(&g2)
            .arg(&sum)
            .arg(&count);
        // SAFETY: as above.
        unsafe { launch.launch(grid(n)) }?;
        Ok(())
    }

    /// The three separable passes of [`crate::crf::gaussian_blur`]'s numerator (or of its
    /// denominator, given ones), on device buffers.
    pub(super) fn gaussian_passes(
        &self,
        values: &CudaView<'_, f32>,
        dims: [usize; 3],
        taps: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        let f = self.function("gauss_blur_axis")?;
        let [nx, ny, nz] = dims.map(|v| v as u64);
        let radius = (taps.len() / 2) as i64;
        let mut scratch = self.stream.alloc_zeros::<f32>(values.len())?;
        for axis in 0..3u32 {
            let mut launch = self.stream.launch_builder(&f);
            match axis {
                0 => launch.arg(values).arg(&mut scratch),
                _ => launch.arg(&*out).arg(&mut scratch),
            };
            launch
                .arg(&nx)
                .arg(&ny)
                .arg(&nz)
                .arg(&axis)
                .arg(taps)
                .arg(&radius);
            // SAFETY: as above; source and destination are distinct buffers of the volume.
            unsafe { launch.launch(grid(values.len() as u64)) }?;
            std::mem::swap(out, &mut scratch);
        }
        Ok(())
    }
}

//! Resampling on the GPU: direct taps for nearest and linear, separable passes for cubic.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::{CudaError, Gpu, grid};
use crate::resample::{AxisTaps, Order, direct_taps, finish_separable, line_taps, separable};

impl Gpu {
    /// [`crate::resample::resample`] on the GPU: nearest and linear straight from the input,
    /// cubic axis by axis (one thread per line for the spline prefilter, one per output value).
    pub fn resample(
        &self,
        data: &[f32],
        dims: [usize; 3],
        new_dims: [usize; 3],
        orders: [Order; 3],
    ) -> Result<Vec<f32>, CudaError> {
        if data.len() != dims.iter().product::<usize>() {
            return Err(CudaError::Unsupported(format!(
                "data does not fill dims {dims:?}"
            )));
        }
        if orders.contains(&Order::Cubic) {
            return self.resample_separable(data, [dims, new_dims], orders);
        }
        let taps = direct_taps(dims, new_dims, orders);
        let upload = |t: &AxisTaps| -> Result<(CudaSlice<u64>, CudaSlice<f32>), CudaError> {
            let indices: Vec<u64> = t.iter().flat_map(|(i, _)| i.map(|v| v as u64)).collect();
            let weights: Vec<f32> = t.iter().flat_map(|(_, w)| *w).collect();
            Ok((
                self.stream.clone_htod(&indices)?,
                self.stream.clone_htod(&weights)?,
            ))
        };
        let ((xi, xw), (yi, yw), (zi, zw)) =
            (upload(&taps[0])?, upload(&taps[1])?, upload(&taps[2])?);
        let input = self.stream.clone_htod(data)?;
        let total = new_dims.iter().product::<usize>();
        let mut out = self.stream.alloc_zeros::<f32>(total)?;
        let [inx, iny] = [dims[0] as u64, dims[1] as u64];
        let [onx, ony, onz] = new_dims.map(|v| v as u64);
        let f = self.function("resample_direct")?;
        let mut launch = self.stream.launch_builder(&f);
        launch
            .arg(&input)
            .arg(&mut out)
            .arg(&inx)
            .arg(&iny)
            .arg(&onx)
            .arg(&ony)
            .arg(&onz);
        launch.arg(&xi).arg(&xw).arg(&yi).arg(&yw).arg(&zi).arg(&zw);
        // SAFETY: the arguments match the kernel's signature; tap buffers hold 2 per output.
        unsafe { launch.launch(grid(total as u64)) }?;
        Ok(self.stream.clone_dtoh(&out)?)
    }

    /// The cubic (separable) path; `grids` = (input dims, output dims).
    pub(super) fn resample_separable(
        &self,
        data: &[f32],
        grids: [[usize; 3]; 2],
        orders: [Order; 3],
    ) -> Result<Vec<f32>, CudaError> {
        let [dims, new_dims] = grids;
        let start = self
            .stream
            .clone_htod(&data.iter().map(|&v| v as f64).collect::<Vec<f64>>())?;
        let (values, separate) = separable(
            data,
            dims,
            new_dims,
            orders,
            start,
            |v, current, axis, m, order| self.axis_pass(&v, current, axis, m, order),
            |mut v, current, axis, ranges| {
                let lo: Vec<f64> = ranges.iter().map(|r| r.0).collect();
                let hi: Vec<f64> = ranges.iter().map(|r| r.1).collect();
                let (lo, hi) = (self.stream.clone_htod(&lo)?, self.stream.clone_htod(&hi)?);
                let [nx, ny, nz] = current.map(|d| d as u64);
                let axis = axis as u32;
                let f = self.function("clip_slices")?;
                let mut launch = self.stream.launch_builder(&f);
                launch
                    .arg(&mut v)
                    .arg(&nx)
                    .arg(&ny)
                    .arg(&nz)
                    .arg(&axis)
                    .arg(&lo)
                    .arg(&hi);
                // SAFETY: as above; one range per slice across `axis`.
                unsafe { launch.launch(grid(nx * ny * nz)) }?;
                Ok(v)
            },
        )?;
        Ok(finish_separable(
            self.stream.clone_dtoh(&values)?,
            data,
            separate,
        ))
    }

    /// One axis of the separable path: `values` (dims `current`) to `m` samples along `axis`.
    pub(super) fn axis_pass(
        &self,
        values: &CudaSlice<f64>,
        current: [usize; 3],
        axis: usize,
        m: usize,
        order: Order,
    ) -> Result<CudaSlice<f64>, CudaError> {
        let n = current[axis];
        let taps = line_taps(n, m, order);
        let first: Vec<i64> = taps.iter().map(|t| t.0 as i64).collect();
        let weights: Vec<f64> = taps.iter().flat_map(|t| t.1).collect();
        let (first, weights) = (
            self.stream.clone_htod(&first)?,
            self.stream.clone_htod(&weights)?,
        );
        let [nx, ny, nz] = current.map(|d| d as u64);
        let (axis32, lines) = (axis as u32, (nx * ny * nz) / n as u64);
        let mut coefficients = self.stream.alloc_zeros::<f64>(if order == Order::Cubic {
            lines as usize * (n + 24)
        } else {
            1
        })?;
        if order == Order::Cubic {
            let f = self.function("spline_coefficients")?;
            let n64 = n as u64;
            let mut launch = self.stream.launch_builder(&f);
            launch
                .arg(values)
                .arg(&mut coefficients)
                .arg(&lines)
                .arg(&nx)
                .arg(&ny)
                .arg(&axis32)
                .arg(&n64);
            // SAFETY: as above; n + 24 coefficients per line.
            unsafe { launch.launch(grid(lines)) }?;
        }
        let total = lines * m as u64;
        let mut out = self.stream.alloc_zeros::<f64>(total as usize)?;
        let (m64, code) = (
            m as u64,
            match order {
                Order::Nearest => 0u32,
                Order::Linear => 1,
                Order::Cubic => 3,
            },
        );
        let f = self.function("axis_taps")?;
        let mut launch = self.stream.launch_builder(&f);
        launch
            .arg(values)
            .arg(&coefficients)
            .arg(&mut out)
            .arg(&nx)
            .arg(&ny)
            .arg(&nz)
            .arg(&axis32);
        launch.arg(&m64).arg(&first).arg(&weights).arg(&code);
        // SAFETY: as above; one first index and four weights per output coordinate.
        unsafe { launch.launch(grid(total)) }?;
        Ok(out)
    }
}

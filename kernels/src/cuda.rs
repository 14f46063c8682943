//! The CUDA paths (feature `cuda`): cudarc with the driver and NVRTC loaded at run time, so a
//! build with the feature still runs, and says why, on a machine without a GPU.
//!
//! The kernels (`cuda/kernels.cu`) are compiled to PTX by NVRTC when a [`Gpu`] is made; each
//! mirrors a CPU routine of this crate and must agree with it (`tests/cuda.rs`).

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, CudaView, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::{CompileOptions, Ptx, compile_ptx_with_opts};

use crate::bilateral::{BilateralSigmas, GridLayout, PAD};
use crate::blend::{Window, WindowShape};
use crate::components::{Components, Connectivity};
use crate::crf::{CrfParams, gaussian_taps};
use crate::gmm::{GaussianMixture, Moments};
use crate::overlap::ConfusionMatrix;
use crate::resample::{AxisTaps, Order, direct_taps, finish_separable, line_taps, separable};
use crate::surface::{SurfaceDistances, SurfaceEngine};

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
    fn resample_separable(
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
    fn axis_pass(
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

    /// [`crate::surface`] on the GPU.
    pub fn surface(&self, mask: &[bool], dims: [usize; 3]) -> Result<Vec<bool>, CudaError> {
        if mask.len() != dims.iter().product::<usize>() {
            return Err(CudaError::Unsupported(format!(
                "mask does not fill dims {dims:?}"
            )));
        }
        let bytes: Vec<u8> = mask.iter().map(|&m| m as u8).collect();
        let input = self.stream.clone_htod(&bytes)?;
        let mut out = self.stream.alloc_zeros::<u8>(bytes.len())?;
        let [nx, ny, nz] = dims.map(|v| v as u64);
        let f = self.function("surface_mask")?;
        let mut launch = self.stream.launch_builder(&f);
        launch.arg(&input).arg(&mut out).arg(&nx).arg(&ny).arg(&nz);
        // SAFETY: as above.
        unsafe { launch.launch(grid(bytes.len() as u64)) }?;
        Ok(self
            .stream
            .clone_dtoh(&out)?
            .into_iter()
            .map(|b| b != 0)
            .collect())
    }

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

    /// [`SurfaceDistances::between`] with the surfaces and distance transforms on the GPU.
    pub fn surface_distances(
        &self,
        pred: &[bool],
        reference: &[bool],
        dims: [usize; 3],
        spacing: [f64; 3],
    ) -> Result<SurfaceDistances, CudaError> {
        let engine = SurfaceEngine {
            surface: |m: &[bool], d| self.surface(m, d),
            squared_distance_to: |m: &[bool], d, s| self.squared_distance_to(m, d, s),
        };
        SurfaceDistances::between_using(pred, reference, dims, spacing, &engine)
    }

    /// [`crate::label_components`] on the GPU (union-find over voxels; numbered on the host).
    pub fn label_components(
        &self,
        labels: &[u16],
        dims: [usize; 3],
        connectivity: Connectivity,
    ) -> Result<Components, CudaError> {
        let n = labels.len();
        if n != dims.iter().product::<usize>() || n >= u32::MAX as usize {
            return Err(CudaError::Unsupported(format!(
                "labels do not fill dims {dims:?} (or exceed 2^32 voxels)"
            )));
        }
        let input = self.stream.clone_htod(labels)?;
        let mut parent = self.stream.alloc_zeros::<u32>(n)?;
        let (n64, [nx, ny, nz]) = (n as u64, dims.map(|v| v as u64));
        let full = u32::from(connectivity == Connectivity::TwentySix);
        let init = self.function("cc_init")?;
        let mut launch = self.stream.launch_builder(&init);
        launch.arg(&mut parent).arg(&n64);
        // SAFETY: as above.
        unsafe { launch.launch(grid(n64)) }?;
        let merge = self.function("cc_merge")?;
        let mut launch = self.stream.launch_builder(&merge);
        launch
            .arg(&input)
            .arg(&mut parent)
            .arg(&nx)
            .arg(&ny)
            .arg(&nz)
            .arg(&full);
        // SAFETY: as above.
        unsafe { launch.launch(grid(n64)) }?;
        let flatten = self.function("cc_flatten")?;
        let mut launch = self.stream.launch_builder(&flatten);
        launch.arg(&mut parent).arg(&n64);
        // SAFETY: as above.
        unsafe { launch.launch(grid(n64)) }?;
        let roots = self.stream.clone_dtoh(&parent)?;
        Ok(Components::from_roots(labels, dims, &roots))
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
    fn grid_filter(
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
    fn gaussian_passes(
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

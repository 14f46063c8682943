//! Sliding-window inference: a volume too large for one pass is covered by overlapping
//! windows of the network's patch size, each window's class probabilities weighted by
//! nnU-Net's Gaussian importance map (or all alike, [`Blend::Constant`]) and averaged.
//!
//! Volumes are `[channel, x, y, z]`, z fastest (see the tuner's preprocessing). The running
//! sums live on the host or on the network's device ([`Accumulation`]).

mod accumulate;
mod activate;
mod forward;
pub mod resident;
mod stream;

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use autoseg_kernels::blend::gaussian_importance_map;
use burn::tensor::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

pub use accumulate::Accumulation;
use accumulate::Sums;
pub use activate::{activate, activate_host};
pub use forward::{HeadSlices, mirror_passes, mirrored};
pub use stream::{SlabStream, WindowForward, streamed_classes};

use crate::device::panic_message;

/// How windows cover the volume.
#[derive(Debug, Clone, PartialEq)]
pub struct SlidingWindow {
    /// Window size, x, y, z.
    pub roi: [usize; 3],
    /// Fraction of the window two neighbours share (nnU-Net and MONAI: 0.5).
    pub overlap: f64,
    /// Windows per forward pass.
    pub batch: usize,
    /// How overlapping windows are weighted.
    pub blend: Blend,
    /// Where the running sums live.
    pub accumulation: Accumulation,
}

/// How overlapping windows are weighted where they meet (MONAI's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Blend {
    /// nnU-Net's Gaussian importance map: a window's centre counts most, its edges least.
    #[default]
    Gaussian,
    /// Every voxel of every window counts the same: a plain mean of the windows.
    Constant,
}

/// nnU-Net's window starts along one axis: as few as cover `size` with at most
/// `1 - overlap` of a window between starts, spread evenly, first at 0, last flush with
/// the end.
pub fn window_starts(size: usize, window: usize, overlap: f64) -> Vec<usize> {
    if size <= window {
        return vec![0];
    }
    let step = (window as f64 * (1.0 - overlap)).max(1.0);
    let steps = ((size - window) as f64 / step).ceil() as usize + 1;
    let stride = (size - window) as f64 / (steps - 1) as f64;
    (0..steps)
        .map(|i| (i as f64 * stride).round_ties_even() as usize)
        .collect()
}

impl SlidingWindow {
    /// `forward`'s outputs (`[n, outputs, roi]` for `[n, channels, roi]`) over the whole
    /// volume, `[outputs, x, y, z]`: windows placed as nnU-Net places them, each weighted by
    /// the blend's importance map, averaged where they overlap. Volumes smaller than the
    /// window are zero-padded and cropped back. The sums are kept where `accumulation`
    /// says; when the device runs out of memory (a panic that says so), the volume is
    /// blended again on the host and a warning says why; any other failure is passed on.
    pub fn blend(
        &self,
        image: &[f32],
        channels: usize,
        dims: [usize; 3],
        classes: usize,
        device: &Device,
        forward: impl Fn(Tensor<5>) -> Tensor<5>,
    ) -> Vec<f32> {
        let volume = Volume {
            image,
            channels,
            dims,
        };
        let once = |accumulation| self.blend_once(accumulation, &volume, classes, device, &forward);
        if self.accumulation == Accumulation::Host {
            return once(Accumulation::Host);
        }
        on_device_or_host(
            "sliding window",
            "blending on the host",
            || once(self.accumulation),
            || once(Accumulation::Host),
        )
    }

    fn blend_once(
        &self,
        accumulation: Accumulation,
        volume: &Volume,
        classes: usize,
        device: &Device,
        forward: &dyn Fn(Tensor<5>) -> Tensor<5>,
    ) -> Vec<f32> {
        let Volume {
            image,
            channels,
            dims,
        } = *volume;
        let padded = self.padded(dims);
        let source = if padded == dims {
            image.to_vec()
        } else {
            pad(image, channels, dims, padded)
        };
        let importance = self.importance();
        let mut sums =
            accumulate::sums(accumulation, padded, classes, self.roi, &importance, device);
        let windows = |origins: &[[usize; 3]]| {
            let mut batch =
                Vec::with_capacity(origins.len() * channels * self.roi.iter().product::<usize>());
            for origin in origins {
                batch.extend(crop(&source, channels, padded, *origin, self.roi));
            }
            let [rx, ry, rz] = self.roi;
            Tensor::<1>::from_floats(batch.as_slice(), device).reshape([
                origins.len(),
                channels,
                rx,
                ry,
                rz,
            ])
        };
        self.slide(padded, windows, |origins, x| sums.add(origins, forward(x)));
        let full = sums.finish();
        if padded == dims {
            full
        } else {
            crop(&full, classes, padded, [0; 3], dims)
        }
    }

    /// [`Self::blend`] of an image already on the network's device (`[channels, x, y, z]`),
    /// whose result stays there (`[outputs, x, y, z]`): windows are cut from it and summed
    /// on the device, in the accumulation's float type (f32 where it says the host). A
    /// device that runs out of memory panics; the caller decides what to fall back to.
    pub fn blend_on_device(
        &self,
        image: Tensor<4>,
        classes: usize,
        forward: impl Fn(Tensor<5>) -> Tensor<5>,
    ) -> Tensor<4> {
        let [channels, x, y, z] = image.dims();
        let dims = [x, y, z];
        let padded = self.padded(dims);
        let device = image.device();
        let source = if padded == dims {
            image
        } else {
            let [px, py, pz] = padded;
            Tensor::zeros([channels, px, py, pz], &device)
                .slice_assign([0..channels, 0..x, 0..y, 0..z], image)
        };
        let dtype = match self.accumulation {
            Accumulation::Device(dtype) => dtype,
            Accumulation::Host => DType::F32,
        };
        let importance = self.importance();
        let mut sums =
            accumulate::DeviceSums::new(padded, classes, self.roi, &importance, &device, dtype);
        let [rx, ry, rz] = self.roi;
        let windows = |origins: &[[usize; 3]]| {
            let cut = origins
                .iter()
                .map(|&[a, b, c]| {
                    source
                        .clone()
                        .slice([0..channels, a..a + rx, b..b + ry, c..c + rz])
                        .unsqueeze_dim(0)
                })
                .collect();
            Tensor::cat(cut, 0)
        };
        self.slide(padded, windows, |origins, x| sums.add(origins, forward(x)));
        sums.mean().slice([0..classes, 0..x, 0..y, 0..z])
    }

    /// Each voxel count of the volume the windows cover: `dims`, or the window where the
    /// image is smaller (zero-padded).
    fn padded(&self, dims: [usize; 3]) -> [usize; 3] {
        std::array::from_fn(|a| dims[a].max(self.roi[a]))
    }

    /// How much each voxel of a window counts (`roi`-shaped, z fastest).
    fn importance(&self) -> Vec<f32> {
        // The kernel counts its first axis as the fastest: z, y, x gives the roi's z-fastest
        // layout.
        let [rx, ry, rz] = self.roi;
        match self.blend {
            Blend::Gaussian => gaussian_importance_map([rz, ry, rx], 0.125),
            Blend::Constant => vec![1.0; rx * ry * rz],
        }
    }

    /// Places windows over a `padded` volume as nnU-Net does and hands each batch of
    /// origins, with its windows (`windows` cuts them), to `add`.
    fn slide(
        &self,
        padded: [usize; 3],
        windows: impl Fn(&[[usize; 3]]) -> Tensor<5>,
        mut add: impl FnMut(&[[usize; 3]], Tensor<5>),
    ) {
        let starts: Vec<Vec<usize>> = (0..3)
            .map(|a| window_starts(padded[a], self.roi[a], self.overlap))
            .collect();
        let mut origins = Vec::new();
        for &x in &starts[0] {
            for &y in &starts[1] {
                for &z in &starts[2] {
                    origins.push([x, y, z]);
                }
            }
        }
        for group in origins.chunks(self.batch.max(1)) {
            add(group, windows(group));
        }
    }
}

/// `on_device()`, or `on_host()` where the device runs out of memory (a panic that says
/// so), with a warning that `what` ran out and the host does `instead`; any other failure
/// is passed on.
pub fn on_device_or_host<T>(
    what: &str,
    instead: &str,
    on_device: impl FnOnce() -> T,
    on_host: impl FnOnce() -> T,
) -> T {
    match catch_unwind(AssertUnwindSafe(on_device)) {
        Ok(done) => done,
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            if !message.contains("out of memory") {
                resume_unwind(panic);
            }
            eprintln!(
                "warning: {what} ran out of device memory ({}); {instead}",
                message.lines().next().unwrap_or_default()
            );
            on_host()
        }
    }
}

/// The image a blend slides over: `channels` x `dims`, z fastest.
struct Volume<'a> {
    image: &'a [f32],
    channels: usize,
    dims: [usize; 3],
}

/// The `size` block at `origin` of a `[c, x, y, z]` z-fastest volume of `dims`.
fn crop(
    data: &[f32],
    channels: usize,
    dims: [usize; 3],
    origin: [usize; 3],
    size: [usize; 3],
) -> Vec<f32> {
    let volume: usize = dims.iter().product();
    let mut out = Vec::with_capacity(channels * size.iter().product::<usize>());
    for c in 0..channels {
        for x in origin[0]..origin[0] + size[0] {
            for y in origin[1]..origin[1] + size[1] {
                let row = c * volume + (x * dims[1] + y) * dims[2] + origin[2];
                out.extend_from_slice(&data[row..row + size[2]]);
            }
        }
    }
    out
}

/// Zero-pads a volume to `padded`, keeping it at the origin.
fn pad(data: &[f32], channels: usize, dims: [usize; 3], padded: [usize; 3]) -> Vec<f32> {
    let volume: usize = dims.iter().product();
    let mut out = vec![0.0; channels * padded.iter().product::<usize>()];
    let new_volume: usize = padded.iter().product();
    for c in 0..channels {
        for x in 0..dims[0] {
            for y in 0..dims[1] {
                let from = c * volume + (x * dims[1] + y) * dims[2];
                let to = c * new_volume + (x * padded[1] + y) * padded[2];
                out[to..to + dims[2]].copy_from_slice(&data[from..from + dims[2]]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::max_difference;
    use autoseg_datasets::regions::Decoding;
    use burn::tensor::DType;

    #[test]
    fn starts_cover_the_axis_evenly_as_nnunet_does() {
        assert_eq!(window_starts(10, 16, 0.5), vec![0]);
        assert_eq!(window_starts(16, 16, 0.5), vec![0]);
        // nnU-Net: compute_steps_for_sliding_window((40,), (16,), 0.5) -> [0, 8, 16, 24]
        assert_eq!(window_starts(40, 16, 0.5), vec![0, 8, 16, 24]);
        // numpy rounds 12.5 to even, as here.
        assert_eq!(window_starts(41, 16, 0.5), vec![0, 6, 12, 19, 25]);
    }

    #[test]
    fn an_identity_network_is_stitched_back_exactly() {
        // Two "classes": the logits are the image and its negation; softmax then gives a
        // smooth function of the voxel, which the blend must return unchanged.
        let dims = [7, 9, 5];
        let n: usize = dims.iter().product();
        let image: Vec<f32> = (0..n).map(|i| ((i * 37) % 11) as f32 / 11.0).collect();
        let window = SlidingWindow {
            roi: [4, 4, 8],
            overlap: 0.5,
            batch: 3,
            blend: Blend::Gaussian,
            accumulation: Accumulation::Host,
        };
        let device = Device::flex();
        let got = window.blend(&image, 1, dims, 2, &device, |x| {
            activate(Decoding::Argmax, Tensor::cat(vec![x.clone(), x.neg()], 1))
        });
        for (i, &v) in image.iter().enumerate() {
            let want = 1.0 / (1.0 + (-2.0 * v).exp());
            assert!(
                (got[i] - want).abs() < 1e-5,
                "voxel {i}: {} vs {want}",
                got[i]
            );
        }
    }

    #[test]
    fn blending_an_identity_returns_the_input_for_odd_and_small_volumes() {
        let device = Device::flex();
        let window = SlidingWindow {
            roi: [16, 16, 16],
            overlap: 0.5,
            batch: 4,
            blend: Blend::Gaussian,
            accumulation: Accumulation::Host,
        };
        for dims in [[37, 29, 23], [10, 9, 7], [16, 40, 3]] {
            let n: usize = dims.iter().product();
            let image: Vec<f32> = (0..2 * n)
                .map(|i| ((i * 7919) % 1000) as f32 - 500.0)
                .collect();
            let got = window.blend(&image, 2, dims, 2, &device, |x| x);
            let worst = image
                .iter()
                .zip(&got)
                .map(|(a, b)| ((a - b) / a.abs().max(1.0)).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "{dims:?}: relative error {worst}");
        }
    }

    #[test]
    fn constant_blending_is_the_plain_mean_of_the_windows() {
        let dims = [12, 6, 5];
        let n: usize = dims.iter().product();
        let image: Vec<f32> = (0..n).map(|i| i as f32).collect();
        for blend in [Blend::Constant, Blend::Gaussian] {
            let window = SlidingWindow {
                roi: [8, 6, 5],
                overlap: 0.5,
                batch: 1,
                blend,
                accumulation: Accumulation::Host,
            };
            let got = window.blend(&image, 1, dims, 1, &Device::flex(), |x| x);
            assert!(
                max_difference(&got, &image) < 1e-3,
                "{blend:?}: the identity"
            );
            // Each window outputs its own start along x: windows at x = 0 and 4 overlap
            // on x = 4..8, where the constant blend gives their plain mean, 2.
            let starts = window_starts(dims[0], 8, 0.5);
            assert_eq!(starts, [0, 4]);
            let calls = std::sync::atomic::AtomicUsize::new(0);
            let got = window.blend(&image, 1, dims, 1, &Device::flex(), |x| {
                let k = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                x.zeros_like() + starts[k] as f32
            });
            let at = |x: usize| got[x * dims[1] * dims[2]];
            assert_eq!((at(0), at(11)), (0.0, 4.0));
            match blend {
                Blend::Constant => assert!((at(6) - 2.0).abs() < 1e-6, "{}", at(6)),
                Blend::Gaussian => assert!(at(4) < 2.0 && at(7) > 2.0, "{} {}", at(4), at(7)),
            }
        }
        let read: Blend = serde_yaml::from_str("constant").unwrap();
        assert_eq!(read, Blend::Constant);
        assert!(serde_yaml::from_str::<Blend>("gausian").is_err());
    }

    #[test]
    fn sums_on_the_device_equal_the_host_kernel_in_f32_and_f16() {
        let window = SlidingWindow {
            roi: [8, 8, 8],
            overlap: 0.5,
            batch: 3,
            blend: Blend::Gaussian,
            accumulation: Accumulation::Host,
        };
        for device in crate::ComputeDevice::available() {
            let dev = device.burn_device();
            for dims in [[19, 13, 11], [6, 9, 5]] {
                let n: usize = dims.iter().product();
                let image: Vec<f32> = (0..n).map(|i| ((i * 7919) % 101) as f32 / 101.0).collect();
                let two = |x: Tensor<5>| Tensor::cat(vec![x.clone(), x.neg() + 1.0], 1);
                let host = window.blend(&image, 1, dims, 2, &dev, two);
                for (dtype, tolerance) in [(DType::F32, 1e-5), (DType::F16, 5e-3)] {
                    let on_device = SlidingWindow {
                        accumulation: Accumulation::Device(dtype),
                        ..window.clone()
                    }
                    .blend(&image, 1, dims, 2, &dev, two);
                    let worst = max_difference(&on_device, &host);
                    assert!(worst < tolerance, "{device} {dims:?} {dtype:?}: {worst}");
                }
            }
        }
    }

    #[test]
    fn a_device_out_of_memory_falls_back_to_the_host() {
        let window = SlidingWindow {
            roi: [8, 8, 8],
            overlap: 0.5,
            batch: 2,
            blend: Blend::Gaussian,
            accumulation: Accumulation::Host,
        };
        let dims = [12, 10, 9];
        let image: Vec<f32> = (0..dims.iter().product())
            .map(|i| (i % 13) as f32)
            .collect();
        let device = Device::flex();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let on_device = |dtype| SlidingWindow {
            accumulation: Accumulation::Device(dtype),
            ..window.clone()
        };
        let got = on_device(DType::F16).blend(&image, 1, dims, 1, &device, |x| {
            if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                panic!("CUDA out of memory. Tried to allocate 2.00 GiB");
            }
            x
        });
        assert!(
            max_difference(&got, &image) < 1e-4,
            "the host pass blends the identity"
        );
        let other = catch_unwind(AssertUnwindSafe(|| {
            on_device(DType::F32).blend(&image, 1, dims, 1, &device, |_| panic!("shape mismatch"))
        }));
        assert!(
            other.is_err(),
            "a failure that is not out of memory is passed on"
        );
    }
}

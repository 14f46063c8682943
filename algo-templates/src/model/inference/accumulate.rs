//! Where sliding-window inference keeps its running sums (each class's weighted scores and
//! the weights): in host memory, or on the network's device, as Auto3DSeg's adaptive inferer
//! and nnU-Net's predictor choose between them.
//!
//! On a GPU the device keeps the sums in half precision, as nnU-Net does, so a volume's
//! scores take half the memory and only the finished result crosses to the host. Should the
//! device run out of memory, the whole volume is blended again on the host (Auto3DSeg's
//! fallback: windows on the GPU, accumulation on the CPU).

use autoseg_kernels::blend::{SumElement, Window, WindowAccumulator, representable_in_f16};
use burn::tensor::{DType, Device, Tensor};

use crate::ComputeDevice;

/// Where the blend's running sums live.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Accumulation {
    /// In host memory: each batch of window outputs is copied back and added by the CPU
    /// kernel (`autoseg_kernels::blend`).
    Host,
    /// On the network's device, in this float type; only the normalised result is copied
    /// back. Falls back to [`Accumulation::Host`] if the device runs out of memory.
    Device(DType),
}

impl Accumulation {
    /// What a device gets by default: on a CUDA GPU the sums stay there in f16; on the CPU
    /// backends the host kernel, since host and device memory are one there.
    pub fn for_device(device: ComputeDevice) -> Accumulation {
        match device {
            ComputeDevice::TchCuda(_) => Accumulation::Device(DType::F16),
            ComputeDevice::Flex | ComputeDevice::TchCpu => Accumulation::Host,
        }
    }
}

/// The running sums of one blend: windows go in a batch at a time, the weighted average of
/// the whole (padded) volume comes out, `[outputs, x, y, z]`, z fastest.
pub(crate) trait Sums {
    /// Adds `outputs` (`[n, outputs, roi]`), window `i` placed at `origins[i]`.
    fn add(&mut self, origins: &[[usize; 3]], outputs: Tensor<5>);
    /// The weighted average.
    fn finish(self: Box<Self>) -> Vec<f32>;
}

/// The sums for `accumulation` over a `padded` volume of `outputs` channels, windows of
/// `roi` weighted by `importance` (`roi`-shaped, z fastest).
pub(crate) fn sums<'a>(
    accumulation: Accumulation,
    padded: [usize; 3],
    outputs: usize,
    roi: [usize; 3],
    importance: &'a [f32],
    device: &Device,
) -> Box<dyn Sums + 'a> {
    match accumulation {
        Accumulation::Host => Box::new(HostSums {
            accumulator: WindowAccumulator::new(reversed(padded), outputs),
            roi,
            outputs,
            importance,
        }),
        Accumulation::Device(dtype) => Box::new(DeviceSums::new(
            padded, outputs, roi, importance, device, dtype,
        )),
    }
}

/// The importance map as `dtype` holds it ([`representable_in_f16`] for f16).
fn representable(importance: &[f32], dtype: DType) -> Vec<f32> {
    match dtype {
        DType::F16 => representable_in_f16(importance),
        _ => importance.to_vec(),
    }
}

/// The kernels' accumulator counts its first axis as the fastest: it is given the axes
/// reversed.
fn reversed(t: [usize; 3]) -> [usize; 3] {
    [t[2], t[1], t[0]]
}

struct HostSums<'a> {
    accumulator: WindowAccumulator,
    roi: [usize; 3],
    outputs: usize,
    importance: &'a [f32],
}

impl Sums for HostSums<'_> {
    fn add(&mut self, origins: &[[usize; 3]], outputs: Tensor<5>) {
        add_windows(
            &mut self.accumulator,
            origins,
            &host_values(outputs),
            self.roi,
            self.outputs,
            self.importance,
        );
    }

    fn finish(self: Box<Self>) -> Vec<f32> {
        self.accumulator.finish()
    }
}

/// Window outputs as host values, `[n, outputs, roi]` in f32.
pub(crate) fn host_values(outputs: Tensor<5>) -> Vec<f32> {
    outputs
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 window outputs")
}

/// Adds a batch of window outputs (host `values`, `[n, channels, roi]`), window `i` at
/// `origins[i]` (x, y, z), into a host accumulator over the kernel's reversed axes.
pub(crate) fn add_windows<S: SumElement>(
    accumulator: &mut WindowAccumulator<S>,
    origins: &[[usize; 3]],
    values: &[f32],
    roi: [usize; 3],
    channels: usize,
    importance: &[f32],
) {
    let window: usize = channels * roi.iter().product::<usize>();
    for (origin, values) in origins.iter().zip(values.chunks_exact(window)) {
        accumulator.add(&Window {
            origin: reversed(*origin),
            size: reversed(roi),
            values,
            importance,
        });
    }
}

/// `total[region] += value`, in place while `total` is the only handle on its data.
fn add_into(total: Tensor<4>, region: [std::ops::Range<usize>; 4], value: Tensor<4>) -> Tensor<4> {
    let sum = total.clone().slice(region.clone()) + value;
    total.slice_assign(region, sum)
}

/// The running sums on the network's device, in `dtype`.
pub(crate) struct DeviceSums {
    /// Held in an `Option` so each update owns the only handle and writes in place (a
    /// shared tensor would be copied whole for every window).
    scores: Option<Tensor<4>>,
    weights: Option<Tensor<4>>,
    outputs: usize,
    /// `[1, 1, roi]`, f32.
    importance: Tensor<5>,
    roi: [usize; 3],
    dtype: DType,
}

impl DeviceSums {
    /// Zeroed sums over a `padded` volume of `outputs` channels, windows of `roi` weighted
    /// by `importance` (`roi`-shaped, z fastest).
    pub(crate) fn new(
        padded: [usize; 3],
        outputs: usize,
        roi: [usize; 3],
        importance: &[f32],
        device: &Device,
        dtype: DType,
    ) -> DeviceSums {
        let [rx, ry, rz] = roi;
        let importance = representable(importance, dtype);
        let importance =
            Tensor::<1>::from_floats(importance.as_slice(), device).reshape([1, 1, rx, ry, rz]);
        let [px, py, pz] = padded;
        DeviceSums {
            scores: Some(Tensor::zeros([outputs, px, py, pz], (device, dtype))),
            weights: Some(Tensor::zeros([1, px, py, pz], (device, dtype))),
            outputs,
            importance,
            roi,
            dtype,
        }
    }

    /// The weighted average, `[outputs, x, y, z]` in f32, on the device.
    pub(crate) fn mean(self) -> Tensor<4> {
        let DeviceSums {
            scores, weights, ..
        } = self;
        let (scores, weights) = (scores.expect("sums"), weights.expect("weights"));
        // Divided in f32: half precision keeps the sums, not the quotient's rounding.
        scores.cast(DType::F32) / weights.cast(DType::F32)
    }
}

impl Sums for DeviceSums {
    fn add(&mut self, origins: &[[usize; 3]], outputs: Tensor<5>) {
        let weighted = (outputs * self.importance.clone()).cast(self.dtype);
        let weight: Tensor<4> = self.importance.clone().cast(self.dtype).squeeze_dim(0);
        let [rx, ry, rz] = self.roi;
        for (i, &[x, y, z]) in origins.iter().enumerate() {
            let (a, b, c) = (x..x + rx, y..y + ry, z..z + rz);
            let window: Tensor<4> = weighted.clone().slice(i..i + 1).squeeze_dim(0);
            let region = [0..self.outputs, a.clone(), b.clone(), c.clone()];
            self.scores = self.scores.take().map(|t| add_into(t, region, window));
            let region = [0..1, a, b, c];
            self.weights = self
                .weights
                .take()
                .map(|t| add_into(t, region, weight.clone()));
        }
    }

    fn finish(self: Box<Self>) -> Vec<f32> {
        self.mean()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 blend")
    }
}

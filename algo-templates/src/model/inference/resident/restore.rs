//! Probabilities brought back from the network's grid to the image's RAS grid, and decoded,
//! on the network's device, one channel at a time: the device holds one channel at the
//! image's resolution plus the decoder's running best, and only class indices (or the
//! probabilities, when asked for) come back to the host.

use autoseg_datasets::regions::{Decoding, REGION_THRESHOLD};
use autoseg_datasets::transforms::preprocess::PreparedGrid;
use autoseg_kernels::resample::Order;
use burn::tensor::{Device, IntDType, Tensor};

use super::resample::ConvexResampler;

/// Probabilities on one prepared grid, `[channels, x, y, z]` on the device, and the share
/// of an ensemble's members they stand for (1 for a lone bundle).
pub struct GridProbabilities {
    /// The (mean) probabilities of the members that prepared the image on this grid.
    pub values: Tensor<4>,
    /// Where the grid sits in the image.
    pub grid: PreparedGrid,
    /// Their weight in the mean over every grid.
    pub weight: f32,
}

/// The class index of each voxel of the RAS grid (x fastest) decoded from the weighted mean
/// of `grids` (the argmax, the first class on ties; or the regions' rule), as the host's
/// `restore_probabilities` decoded by `Decoding::classes`.
pub fn classes_on_device(
    grids: &[GridProbabilities],
    channels: usize,
    decoding: Decoding,
) -> Vec<u8> {
    let mut decoder =
        DeviceDecoder::start(decoding, grids[0].grid.ras_dims, &grids[0].values.device());
    let back = resamplers(grids);
    for k in 0..channels {
        decoder.offer(k, restored_channel(grids, &back, k, decoding));
    }
    decoder.classes()
}

/// The weighted mean of `grids`' channels on the RAS grid, `[channels, x, y, z]` with x
/// fastest, brought to the host a channel at a time.
pub fn probabilities_on_device(
    grids: &[GridProbabilities],
    channels: usize,
    decoding: Decoding,
) -> Vec<f32> {
    let voxels: usize = grids[0].grid.ras_dims.iter().product();
    let mut out = Vec::with_capacity(channels * voxels);
    let back = resamplers(grids);
    for k in 0..channels {
        out.extend(x_fastest_f32(restored_channel(grids, &back, k, decoding)));
    }
    out
}

/// Per grid, what brings its channels back to its crop: linear, nearest along nnU-Net's
/// separate axis (built once for every class).
fn resamplers(grids: &[GridProbabilities]) -> Vec<ConvexResampler> {
    grids
        .iter()
        .map(|g| {
            let orders = g.grid.orders(Order::Linear);
            let device = g.values.device();
            ConvexResampler::new(g.grid.dims, g.grid.cropped_dims(), orders, &device)
        })
        .collect()
}

/// Channel `k` of the weighted mean of `grids` on the RAS grid (`[1, x, y, z]`, z fastest):
/// each grid's channel resampled back to its crop (`back`, one per grid) and pasted in,
/// `decoding`'s certain background outside the crop.
fn restored_channel(
    grids: &[GridProbabilities],
    back: &[ConvexResampler],
    k: usize,
    decoding: Decoding,
) -> Tensor<4> {
    grids
        .iter()
        .zip(back)
        .map(|(g, back)| {
            let restored = back.apply(g.values.clone().narrow(0, k, 1));
            let [rx, ry, rz] = g.grid.ras_dims;
            let c = g.grid.crop;
            let full = Tensor::full([1, rx, ry, rz], decoding.outside(k), &restored.device());
            let crop = [0..1, c[0][0]..c[0][1], c[1][0]..c[1][1], c[2][0]..c[2][1]];
            let pasted = full.slice_assign(crop, restored);
            if g.weight == 1.0 {
                pasted
            } else {
                pasted * g.weight
            }
        })
        .reduce(|a, b| a + b)
        .expect("one grid at least")
}

/// A `[1, x, y, z]` (z fastest) tensor's values, x fastest.
fn x_fastest_f32(t: Tensor<4>) -> Vec<f32> {
    t.permute([0, 3, 2, 1])
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 values")
}

/// [`autoseg_datasets::regions::ClassDecoder`] on the device: channels offered in order.
struct DeviceDecoder {
    decoding: Decoding,
    /// Each voxel's class so far.
    class: Tensor<4>,
    /// Each voxel's best value so far (the argmax's; regions take the last region held).
    best: Option<Tensor<4>>,
}

impl DeviceDecoder {
    fn start(decoding: Decoding, [x, y, z]: [usize; 3], device: &Device) -> DeviceDecoder {
        let best = match decoding {
            Decoding::Argmax => Some(Tensor::full([1, x, y, z], f32::NEG_INFINITY, device)),
            Decoding::Regions => None,
        };
        DeviceDecoder {
            decoding,
            class: Tensor::zeros([1, x, y, z], device),
            best,
        }
    }

    fn offer(&mut self, k: usize, values: Tensor<4>) {
        let (taken, class) = match (self.decoding, self.best.take()) {
            (Decoding::Argmax, Some(best)) => {
                let better = values.clone().greater(best.clone());
                self.best = Some(best.mask_where(better.clone(), values));
                (better, k)
            }
            _ => (values.greater_elem(REGION_THRESHOLD), k + 1),
        };
        self.class = self.class.clone().mask_fill(taken, class as f32);
    }

    /// Each voxel's class index, x fastest, a byte each on the way back.
    fn classes(self) -> Vec<u8> {
        self.class
            .permute([0, 3, 2, 1])
            .cast(IntDType::U8)
            .into_data()
            .convert::<u8>()
            .try_into_vec::<u8>()
            .expect("class indices")
    }
}

//! Sliding-window blending: nnU-Net's Gaussian importance map and the accumulation of
//! weighted window predictions into a whole-volume buffer.

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// nnU-Net's importance map for a window of `patch` voxels (x fastest): a Gaussian centred at
/// `patch / 2` with sigma = `patch * sigma_scale` per axis (nnU-Net: 1/8), truncated at four
/// sigmas as scipy's `gaussian_filter` is, scaled to a maximum of 10; voxels past the
/// truncation take the smallest non-zero value, so every voxel keeps some weight.
pub fn gaussian_importance_map(patch: [usize; 3], sigma_scale: f64) -> Vec<f32> {
    let axis = |a: usize| -> Vec<f64> {
        let n = patch[a];
        let (centre, sigma) = ((n / 2) as f64, n as f64 * sigma_scale);
        let radius = (4.0 * sigma + 0.5).floor();
        (0..n)
            .map(|i| {
                let d = i as f64 - centre;
                if d.abs() > radius {
                    0.0
                } else {
                    (-0.5 * d * d / (sigma * sigma)).exp()
                }
            })
            .collect()
    };
    let (wx, wy, wz) = (axis(0), axis(1), axis(2));
    let mut map: Vec<f64> = Vec::with_capacity(patch.iter().product());
    for &z in &wz {
        for &y in &wy {
            map.extend(wx.iter().map(|&x| 10.0 * x * y * z));
        }
    }
    let smallest = map
        .iter()
        .copied()
        .filter(|&v| v > 0.0)
        .fold(f64::INFINITY, f64::min);
    map.into_iter()
        .map(|v| if v > 0.0 { v as f32 } else { smallest as f32 })
        .collect()
}

/// The smallest normal f16, 2^-14.
const F16_MIN_NORMAL: f32 = 6.103_515_6e-5;

/// The importance map as sums in f16 keep it: the Gaussian's far corners (1e-10 and less
/// at nnU-Net's sigma) would vanish from every product, leaving a window's edge with no
/// score at all where only it reaches, so values under f16's smallest normal number take
/// the least weight that is above it, as nnU-Net gives the least non-zero weight to the
/// map's zeros after its cast to half.
pub fn representable_in_f16(importance: &[f32]) -> Vec<f32> {
    let floor = importance
        .iter()
        .copied()
        .filter(|&w| w >= F16_MIN_NORMAL)
        .fold(f32::INFINITY, f32::min);
    importance
        .iter()
        .map(|&w| if w < F16_MIN_NORMAL { floor } else { w })
        .collect()
}

/// One window's prediction: its corner in the volume, its size, its channels one after
/// another (x fastest), and one importance weight per window voxel.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub origin: [usize; 3],
    pub size: [usize; 3],
    pub values: &'a [f32],
    pub importance: &'a [f32],
}

/// The volume a window is added into, to check a window against (CPU and GPU alike).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowShape {
    pub dims: [usize; 3],
    pub channels: usize,
}

impl WindowShape {
    /// Why `window` cannot be added; `Ok` when it can.
    pub fn check(&self, window: &Window) -> Result<(), String> {
        self.check_parts(
            window.origin,
            window.size,
            window.values.len(),
            window.importance.len(),
        )
    }

    fn check_parts(
        &self,
        origin: [usize; 3],
        window: [usize; 3],
        values: usize,
        importance: usize,
    ) -> Result<(), String> {
        let n_window: usize = window.iter().product();
        if importance != n_window {
            return Err(format!(
                "importance map of {importance} voxels for a window of {n_window}"
            ));
        }
        if values != n_window * self.channels {
            return Err(format!(
                "{values} window values for {} channels of {n_window}",
                self.channels
            ));
        }
        match (0..3).find(|&a| origin[a] + window[a] > self.dims[a]) {
            Some(a) => Err(format!(
                "window at {origin:?} of {window:?} leaves the volume {:?} on axis {a}",
                self.dims
            )),
            None => Ok(()),
        }
    }
}

/// How an accumulator keeps its per-channel sums: in f32, or in f16 at half the memory, as
/// nnU-Net keeps its sliding window's sums (`torch.half`, on the GPU and the CPU alike). The
/// summed weights stay f32 whatever the sums are.
///
/// f16 suits sums of probabilities (at most the summed importance, tens with nnU-Net's map
/// peaking at 10; f16 reaches 65504), each addition rounding to 2^-11 of the sum, with an
/// importance map whose every weight f16 keeps ([`representable_in_f16`]).
pub trait SumElement: Copy + Default + Send + Sync + std::fmt::Debug {
    /// `dst[i] += src[i] * importance[i]`.
    fn add_weighted(dst: &mut [Self], src: &[f32], importance: &[f32]);
    /// The sum as f32.
    fn value(self) -> f32;
}

impl SumElement for f32 {
    fn add_weighted(dst: &mut [f32], src: &[f32], importance: &[f32]) {
        for ((d, s), i) in dst.iter_mut().zip(src).zip(importance) {
            *d += s * i;
        }
    }

    fn value(self) -> f32 {
        self
    }
}

impl SumElement for f16 {
    /// Converted a run at a time (F16C or NEON where the CPU has them), added in f32, and
    /// rounded back once.
    fn add_weighted(dst: &mut [f16], src: &[f32], importance: &[f32]) {
        const RUN: usize = 64;
        let mut wide = [0f32; RUN];
        for ((d, s), i) in dst
            .chunks_mut(RUN)
            .zip(src.chunks(RUN))
            .zip(importance.chunks(RUN))
        {
            let wide = &mut wide[..d.len()];
            d.convert_to_f32_slice(wide);
            f32::add_weighted(wide, s, i);
            d.convert_from_f32_slice(wide);
        }
    }

    fn value(self) -> f32 {
        self.to_f32()
    }
}

/// Sums of importance-weighted window predictions over a volume, and the summed weights;
/// the sums in `S` (f32 unless a band must stay small: [`SumElement`]).
#[derive(Debug, Clone)]
pub struct WindowAccumulator<S: SumElement = f32> {
    shape: WindowShape,
    /// Channel-major, x fastest.
    sum: Vec<S>,
    weight: Vec<f32>,
}

impl<S: SumElement> WindowAccumulator<S> {
    /// An empty accumulator for `channels` channels over `dims` voxels.
    pub fn new(dims: [usize; 3], channels: usize) -> WindowAccumulator<S> {
        let n = dims.iter().product();
        WindowAccumulator {
            shape: WindowShape { dims, channels },
            sum: vec![S::default(); n * channels],
            weight: vec![0.0; n],
        }
    }

    /// Adds one window's weighted prediction.
    ///
    /// # Panics
    /// When the window leaves the volume or its buffers do not match its size.
    pub fn add(&mut self, w: &Window) {
        if let Err(why) = self.shape.check(w) {
            panic!("{why}");
        }
        let (origin, window, values, importance) = (w.origin, w.size, w.values, w.importance);
        let n_window: usize = window.iter().product();
        let [nx, ny, _] = self.shape.dims;
        let rows = |f: &mut dyn FnMut(usize, usize)| {
            for z in 0..window[2] {
                for y in 0..window[1] {
                    let at = ((origin[2] + z) * ny + origin[1] + y) * nx + origin[0];
                    f(at, (z * window[1] + y) * window[0]);
                }
            }
        };
        let width = window[0];
        rows(&mut |at, w| {
            for (dst, src) in self.weight[at..at + width]
                .iter_mut()
                .zip(&importance[w..w + width])
            {
                *dst += src;
            }
        });
        let volume = nx * ny * self.shape.dims[2];
        self.sum
            .par_chunks_mut(volume)
            .zip(values.par_chunks(n_window))
            .for_each(|(sum, channel)| {
                rows(&mut |at, w| {
                    S::add_weighted(
                        &mut sum[at..at + width],
                        &channel[w..w + width],
                        &importance[w..w + width],
                    );
                });
            });
    }

    /// The weighted means at position `at` along the fastest axis, one per row of
    /// `channel` (rows in order, 0 where no window reached): one slice of the volume, read
    /// where it lies. With [`Self::advance`] a band along that axis streams through a volume.
    pub fn slice(&self, channel: usize, at: usize, out: &mut Vec<f32>) {
        let width = self.shape.dims[0];
        let rows = self.weight.len() / width;
        let sums = &self.sum[channel * rows * width..(channel + 1) * rows * width];
        out.clear();
        out.extend(
            sums.chunks_exact(width)
                .zip(self.weight.chunks_exact(width))
                .map(|(s, w)| {
                    if w[at] > 0.0 {
                        s[at].value() / w[at]
                    } else {
                        0.0
                    }
                }),
        );
    }

    /// Drops the first `n` positions of every row along the fastest axis: the rest moves to
    /// the front and the freed tail starts again from zero, so windows added after it place
    /// their origins `n` earlier.
    ///
    /// # Panics
    /// When `n` exceeds the fastest axis.
    pub fn advance(&mut self, n: usize) {
        let width = self.shape.dims[0];
        assert!(n <= width, "advancing {n} along a band {width} wide");
        for row in self.sum.chunks_exact_mut(width) {
            row.copy_within(n.., 0);
            row[width - n..].fill(S::default());
        }
        for row in self.weight.chunks_exact_mut(width) {
            row.copy_within(n.., 0);
            row[width - n..].fill(0.0);
        }
    }
}

impl WindowAccumulator<f32> {
    /// The weighted mean per voxel and channel (channel-major); 0 where no window reached.
    pub fn finish(mut self) -> Vec<f32> {
        let weight = self.weight;
        self.sum.par_chunks_mut(weight.len()).for_each(|channel| {
            for (v, &w) in channel.iter_mut().zip(&weight) {
                *v = if w > 0.0 { *v / w } else { 0.0 };
            }
        });
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_peaks_at_ten_in_the_centre_and_keeps_every_voxel_positive() {
        let patch = [16, 12, 9];
        let map = gaussian_importance_map(patch, 1.0 / 8.0);
        let at = |x: usize, y: usize, z: usize| map[(z * 12 + y) * 16 + x];
        assert_eq!(at(8, 6, 4), 10.0);
        assert_eq!(map.iter().copied().fold(f32::MIN, f32::max), 10.0);
        assert!(map.iter().all(|&v| v > 0.0));
        // Separable: the value is 10 times the product of the axes' factors.
        let g = |d: f64, n: f64| (-0.5 * d * d / (n / 8.0).powi(2)).exp();
        let want = 10.0 * g(3.0, 16.0) * g(-2.0, 12.0) * g(1.0, 9.0);
        assert!((at(11, 4, 5) as f64 - want).abs() < 1e-6 * want);
        // Past four sigmas (none here at 1/8: the radius int(4 sigma + 0.5) reaches the corners)
        // a voxel takes the smallest value; with sigma 1/16 the corners are past it.
        assert!(at(0, 0, 0) > 0.0 && at(0, 0, 0) <= at(1, 1, 1));
        let narrow = gaussian_importance_map(patch, 1.0 / 16.0);
        let floor = narrow.iter().copied().fold(f32::MAX, f32::min);
        assert_eq!(narrow[0], floor);
        assert!(floor > 0.0);
    }

    #[test]
    fn a_band_read_and_advanced_as_it_streams_equals_the_whole_volume() {
        let (streamed, whole) = streamed_and_whole::<f32>();
        assert_eq!(streamed, whole);
    }

    #[test]
    fn an_f16_band_is_the_whole_volume_to_f16_rounding() {
        let (streamed, whole) = streamed_and_whole::<f16>();
        // Values up to 10: each of at most two additions rounds to 2^-11 of the sum.
        let worst = streamed
            .iter()
            .zip(&whole)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max);
        assert!(worst > 0.0 && worst < 1e-3, "{worst}");
    }

    /// A band of sums in `S` streamed along a volume, and the whole volume's f32 blend.
    fn streamed_and_whole<S: SumElement>() -> (Vec<f32>, Vec<f32>) {
        // Windows of 4 along the fastest axis of a 10-long volume, at 0, 3 and 6.
        let (dims, window, channels) = ([10, 3, 2], [4, 3, 2], 2);
        let importance = representable_in_f16(&gaussian_importance_map(window, 1.0 / 8.0));
        let n = importance.len();
        let values = |start: usize| -> Vec<f32> {
            (0..channels * n)
                .map(|i| (i * 7 + start * 13) as f32 % 11.0)
                .collect()
        };
        let mut whole = WindowAccumulator::<f32>::new(dims, channels);
        let mut band = WindowAccumulator::<S>::new([window[0], 3, 2], channels);
        let mut streamed = vec![vec![Vec::new(); 6]; channels];
        let starts = [0, 3, 6];
        let mut slice = Vec::new();
        for (i, &start) in starts.iter().enumerate() {
            let v = values(start);
            let at = |origin| Window {
                origin,
                size: window,
                values: &v,
                importance: &importance,
            };
            whole.add(&at([start, 0, 0]));
            band.add(&at([0, 0, 0]));
            // Final: up to the next window's start, or the end.
            let done = starts.get(i + 1).map_or(dims[0], |&next| next) - start;
            for (c, rows) in streamed.iter_mut().enumerate() {
                for at in 0..done {
                    band.slice(c, at, &mut slice);
                    rows.iter_mut().zip(&slice).for_each(|(r, &v)| r.push(v));
                }
            }
            band.advance(done);
        }
        (streamed.concat().concat(), whole.finish())
    }

    #[test]
    fn overlapping_windows_average_to_their_values() {
        let dims = [10, 6, 4];
        let mut acc = WindowAccumulator::new(dims, 2);
        let window = [6, 6, 4];
        let importance = gaussian_importance_map(window, 1.0 / 8.0);
        let n = importance.len();
        for (origin, value) in [([0, 0, 0], 1.0f32), ([4, 0, 0], 3.0)] {
            let mut values = vec![value; n];
            values.extend(vec![-value; n]);
            acc.add(&Window {
                origin,
                size: window,
                values: &values,
                importance: &importance,
            });
        }
        let out = acc.finish();
        let volume = 10 * 6 * 4;
        assert_eq!(out[0], 1.0, "only the first window reaches x = 0");
        assert_eq!(out[9], 3.0);
        let overlap = out[4];
        assert!(overlap > 1.0 && overlap < 3.0);
        assert_eq!(out[volume + 4], -overlap, "channel 2 is the negation");
    }
}

//! Pooled intensity distributions over many cases in bounded memory: exact moments and a
//! mergeable quantile sketch with a relative error bound.
//!
//! The sketch buckets values by their float bits, as HDR histograms do: sign, exponent and the
//! top [`MANTISSA_BITS`] mantissa bits make the key, so keys order like values and a bucket
//! spans at most 2^-9 of its values' magnitude. Each bucket keeps its weight and the smallest
//! and largest value it saw; its representative is its midpoint clamped into that range, within
//! relative error 2^-10 (about 0.1 %) of every value in it, and exact when the bucket saw one
//! distinct value (integer images up to 1024 answer exactly). Memory is the number of occupied
//! buckets (at most 2^18), never the number of voxels, and keys need no logarithm.
//!
//! Error bound of [`QuantileSketch::percentile`]: with the exact order statistics x_k and
//! x_{k+1} that numpy's linear interpolation uses, the answer differs from numpy's by at most
//! [`RELATIVE_ERROR`]·max(|x_k|, |x_{k+1}|) (plus 1e-38 for subnormal values).

use serde::{Deserialize, Serialize};

use autoseg_kernels::order::{from_ordered_bits, ordered_bits};

use crate::sample::linear_percentile;
use crate::window::Window;

/// Mantissa bits kept in a bucket key.
pub const MANTISSA_BITS: u32 = 9;

/// The relative error bound of a bucket's representative: 2^-(MANTISSA_BITS + 1).
pub const RELATIVE_ERROR: f64 = 1.0 / (1u32 << (MANTISSA_BITS + 1)) as f64;

/// Exact count, mean, variance, min and max of a weighted sample, mergeable (Chan et al.).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub weight: f64,
    pub mean: f64,
    /// Sum of weighted squared deviations from the mean.
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            weight: 0.0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    /// The moments of `values`, each of weight 1.
    pub fn of(values: &[f32]) -> Moments {
        if values.is_empty() {
            return Moments::default();
        }
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let m2 = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v as f64), hi.max(v as f64))
            });
        Moments {
            weight: n,
            mean,
            m2,
            min,
            max,
        }
    }

    /// Adds `other` with its weights multiplied by `scale`.
    pub fn merge_scaled(&mut self, other: &Moments, scale: f64) {
        let w = other.weight * scale;
        if w == 0.0 {
            return;
        }
        let total = self.weight + w;
        let delta = other.mean - self.mean;
        self.m2 += other.m2 * scale + delta * delta * self.weight * w / total;
        self.mean += delta * w / total;
        self.weight = total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Population standard deviation (divides by the total weight).
    pub fn stdev(&self) -> f64 {
        if self.weight > 0.0 {
            (self.m2 / self.weight).sqrt()
        } else {
            0.0
        }
    }
}

/// One sample's distribution: its exact moments and its quantile sketch, what the dataset
/// figures pool over cases.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    pub moments: Moments,
    pub sketch: QuantileSketch,
}

#[cfg(test)]
impl Distribution {
    /// The distribution of `values`, each of weight 1 (the reference the analyzer's one-pass
    /// builds are tested against).
    pub fn of(values: &[f32]) -> Distribution {
        Distribution {
            moments: Moments::of(values),
            sketch: QuantileSketch::of(values),
        }
    }
}

/// The bound on [`QuantileSketch::percentile`]'s error for the sample `sorted` (ascending): the
/// relative error times the larger magnitude of the two order statistics numpy interpolates.
pub fn error_bound(sorted: &[f64], q: f64) -> f64 {
    let k = (q / 100.0 * (sorted.len() - 1) as f64).floor() as usize;
    RELATIVE_ERROR
        * sorted[k]
            .abs()
            .max(sorted[(k + 1).min(sorted.len() - 1)].abs())
}

/// One occupied bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub key: i32,
    pub weight: f64,
    pub min: f32,
    pub max: f32,
}

/// Builds a [`QuantileSketch`] one value at a time, over a dense table of the keys met.
pub struct SketchBuilder {
    /// Per key: count, min, max.
    dense: Window<(u32, f32, f32)>,
}

impl Default for SketchBuilder {
    fn default() -> Self {
        SketchBuilder::new()
    }
}

impl SketchBuilder {
    pub fn new() -> SketchBuilder {
        SketchBuilder {
            dense: Window::new((0, f32::INFINITY, f32::NEG_INFINITY)),
        }
    }

    /// Adds `count` copies of `v`.
    #[inline]
    pub fn add(&mut self, v: f32, count: u32) {
        let b = self.dense.cell(QuantileSketch::key(v) as usize);
        b.0 += count;
        b.1 = b.1.min(v);
        b.2 = b.2.max(v);
    }

    /// Counts per coarser key: the key's top `bits` bits (a histogram of the values' top
    /// `bits` order-preserving bits, for an exact selection).
    pub fn coarse_counts(&self, bits: u32) -> Window<u32> {
        let shift = 9 + MANTISSA_BITS - bits;
        let mut counts = Window::new(0u32);
        for (key, b) in self.dense.iter().filter(|(_, b)| b.0 > 0) {
            *counts.cell(key >> shift) += b.0;
        }
        counts
    }

    pub fn finish(self) -> QuantileSketch {
        let buckets = self
            .dense
            .iter()
            .filter(|(_, b)| b.0 > 0)
            .map(|(key, &(count, min, max))| Bucket {
                key: key as i32,
                weight: count as f64,
                min,
                max,
            })
            .collect();
        QuantileSketch { buckets }
    }
}

/// A mergeable quantile sketch with a relative error bound (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuantileSketch {
    /// Occupied buckets, ascending by key (and so by value).
    buckets: Vec<Bucket>,
}

impl QuantileSketch {
    /// An empty sketch.
    pub fn new() -> QuantileSketch {
        QuantileSketch::default()
    }

    /// The sketch of `values`, each of weight 1.
    pub fn of(values: &[f32]) -> QuantileSketch {
        let mut builder = SketchBuilder::new();
        for &v in values {
            builder.add(v, 1);
        }
        builder.finish()
    }

    /// The value's bits made to order like the value, cut to sign, exponent and
    /// [`MANTISSA_BITS`] of mantissa.
    pub fn key(v: f32) -> u32 {
        ordered_bits(v) >> (23 - MANTISSA_BITS)
    }

    /// The bucket's representative: its midpoint, clamped into the values it saw.
    fn representative(&self, b: &Bucket) -> f64 {
        let low = Self::value_of_key(b.key as u32, 0);
        let high = Self::value_of_key(b.key as u32, (1 << (23 - MANTISSA_BITS)) - 1);
        ((low + high) / 2.0).clamp(b.min as f64, b.max as f64)
    }

    /// The float whose ordered bits are `key` followed by `rest`.
    fn value_of_key(key: u32, rest: u32) -> f64 {
        from_ordered_bits((key << (23 - MANTISSA_BITS)) | rest) as f64
    }

    /// Total weight.
    pub fn weight(&self) -> f64 {
        self.buckets.iter().map(|b| b.weight).sum()
    }

    /// Adds `other`'s buckets with their weights multiplied by `scale`.
    pub fn merge_scaled(&mut self, other: &QuantileSketch, scale: f64) {
        let mut merged = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.key == y.key => {
                    let (x, y) = (a.next().unwrap(), b.next().unwrap());
                    Bucket {
                        key: x.key,
                        weight: x.weight + y.weight * scale,
                        min: x.min.min(y.min),
                        max: x.max.max(y.max),
                    }
                }
                (Some(x), Some(y)) if x.key < y.key => *a.next().unwrap(),
                (_, Some(_)) => {
                    let y = b.next().unwrap();
                    Bucket {
                        weight: y.weight * scale,
                        ..*y
                    }
                }
                (Some(_), None) => *a.next().unwrap(),
                (None, None) => break,
            };
            merged.push(next);
        }
        self.buckets = merged;
    }

    /// The value at 0-based rank `rank` in cumulative weight.
    fn value_at_rank(&self, rank: f64) -> f64 {
        let mut cumulative = 0.0;
        for b in &self.buckets {
            cumulative += b.weight;
            if cumulative > rank {
                return self.representative(b);
            }
        }
        self.buckets.last().map_or(0.0, |b| self.representative(b))
    }

    /// The q-th percentile (0..=100), interpolated linearly between neighbouring ranks as numpy
    /// does, treating the total weight as the sample size.
    pub fn percentile(&self, q: f64) -> f64 {
        let n = self.weight();
        if n <= 0.0 {
            return 0.0;
        }
        linear_percentile(n, q, |rank| self.value_at_rank(rank))
    }

    /// Encodes the sketch as bytes (for the analyzer's per-case cache).
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.buckets.len() as u64).to_le_bytes());
        for b in &self.buckets {
            out.extend_from_slice(&b.key.to_le_bytes());
            out.extend_from_slice(&b.weight.to_le_bytes());
            out.extend_from_slice(&b.min.to_le_bytes());
            out.extend_from_slice(&b.max.to_le_bytes());
        }
    }

    /// Decodes what [`QuantileSketch::to_bytes`] wrote; `None` when the bytes are cut short.
    pub fn from_bytes(bytes: &mut &[u8]) -> Option<QuantileSketch> {
        let len = u64::from_le_bytes(take(bytes)?) as usize;
        if len > bytes.len() / 20 {
            return None;
        }
        let buckets = (0..len)
            .map(|_| {
                Some(Bucket {
                    key: i32::from_le_bytes(take(bytes)?),
                    weight: f64::from_le_bytes(take(bytes)?),
                    min: f32::from_le_bytes(take(bytes)?),
                    max: f32::from_le_bytes(take(bytes)?),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(QuantileSketch { buckets })
    }
}

fn take<const N: usize>(bytes: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = bytes.split_first_chunk::<N>()?;
    *bytes = rest;
    Some(*head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoseg_datasets::rng::Rng;

    fn numpy_percentile(sorted: &[f64], q: f64) -> (f64, f64) {
        (
            linear_percentile(sorted.len() as f64, q, |r| sorted[r as usize]),
            error_bound(sorted, q),
        )
    }

    fn sample(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let u = rng.uniform();
                // Heavy-tailed, both signs, some exact zeros.
                if u < 0.05 {
                    0.0
                } else {
                    ((u - 0.3) * 40.0).powi(3) as f32
                }
            })
            .collect()
    }

    #[test]
    fn percentiles_within_the_bound_of_a_brute_force_sort() {
        let parts = [sample(10_000, 1), sample(3_333, 2), sample(1, 3)];
        let mut sketch = QuantileSketch::new();
        let mut moments = Moments::default();
        for p in &parts {
            sketch.merge_scaled(&QuantileSketch::of(p), 1.0);
            moments.merge_scaled(&Moments::of(p), 1.0);
        }
        let mut all: Vec<f64> = parts.iter().flatten().map(|&v| v as f64).collect();
        all.sort_by(f64::total_cmp);
        for q in [0.0, 0.5, 10.0, 50.0, 90.0, 99.5, 100.0] {
            let (want, bound) = numpy_percentile(&all, q);
            let got = sketch.percentile(q);
            assert!(
                (got - want).abs() <= bound + 1e-12,
                "q {q}: {got} vs {want}"
            );
        }
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        let var = all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64;
        assert!((moments.mean - mean).abs() < 1e-9 * mean.abs().max(1.0));
        assert!((moments.stdev() - var.sqrt()).abs() < 1e-9 * var.sqrt());
        assert_eq!(moments.max, all[all.len() - 1]);
    }

    #[test]
    fn integer_images_are_exact() {
        let values: Vec<f32> = (0..5000).map(|i| ((i * 37) % 1024) as f32).collect();
        let sketch = QuantileSketch::of(&values);
        let mut sorted: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        sorted.sort_by(f64::total_cmp);
        for q in [0.5, 10.0, 50.0, 90.0, 99.5] {
            assert_eq!(
                sketch.percentile(q),
                numpy_percentile(&sorted, q).0,
                "q {q}"
            );
        }
    }

    #[test]
    fn bytes_round_trip() {
        let sketch = QuantileSketch::of(&sample(500, 9));
        let mut bytes = Vec::new();
        sketch.to_bytes(&mut bytes);
        assert_eq!(
            QuantileSketch::from_bytes(&mut bytes.as_slice()),
            Some(sketch)
        );
        assert_eq!(
            QuantileSketch::from_bytes(&mut &bytes[..bytes.len() - 1]),
            None
        );
    }
}

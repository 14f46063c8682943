//! MONAI's per-sample figures ([`SampleStats`]) for many samples of one channel at once, in two
//! passes over the voxels and without sorting them: a radix select.
//!
//! Pass 1 counts every sample's values in 65536 buckets of the top 16 bits of the value's
//! order-preserving bit pattern, with count, min, max and sums (shifted by the sample's first
//! value, so the variance keeps its precision). The cumulative counts then name the bucket, and
//! the rank inside it, of every order statistic the figures need (median and the two
//! neighbours of each percentile). Pass 2 looks inside those few buckets only: a small one
//! keeps its values, a large one counts its values by their low 16 bits. Either way the order
//! statistics come out exact, equal to what a full sort gives.

use autoseg_kernels::order::{from_ordered_bits, ordered_bits};

use crate::runs::{keyed_runs, value_runs};
use crate::sample::{PERCENTILES, SampleStats, linear_percentile};
use crate::sketch::{Moments, QuantileSketch, SketchBuilder};
use crate::window::Window;

const BUCKET_BITS: u32 = 16;
const BUCKETS: usize = 1 << BUCKET_BITS;
/// A target bucket holding more values than this is resolved by a second histogram.
const GATHER_LIMIT: u32 = 1 << 14;

/// Pass-1 sums of one sample, shifted by its first value.
#[derive(Debug, Clone, Copy)]
struct Sums {
    n: u64,
    shift: f64,
    s1: f64,
    s2: f64,
    min: f32,
    max: f32,
}

impl Default for Sums {
    fn default() -> Self {
        Sums {
            n: 0,
            shift: 0.0,
            s1: 0.0,
            s2: 0.0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }
}

impl Sums {
    /// Adds `count` copies of `v`.
    #[inline]
    fn add(&mut self, v: f32, count: u32) {
        if self.n == 0 {
            self.shift = v as f64;
        }
        let (d, c) = (v as f64 - self.shift, count as f64);
        self.n += count as u64;
        self.s1 += c * d;
        self.s2 += c * d * d;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    fn moments(&self) -> Moments {
        if self.n == 0 {
            return Moments::default();
        }
        let n = self.n as f64;
        Moments {
            weight: n,
            mean: self.shift + self.s1 / n,
            m2: (self.s2 - self.s1 * self.s1 / n).max(0.0),
            min: self.min as f64,
            max: self.max as f64,
        }
    }
}

/// The values of one target bucket, collected in pass 2.
enum Slot {
    Values(Vec<f32>),
    LowBits(Vec<u32>),
}

impl Slot {
    /// The value at `offset` (0-based) among the bucket's values in ascending order.
    fn value_at(&mut self, bucket: usize, offset: u64) -> f64 {
        match self {
            Slot::Values(v) => {
                let (_, x, _) = v.select_nth_unstable_by(offset as usize, f32::total_cmp);
                *x as f64
            }
            Slot::LowBits(counts) => {
                let mut seen = 0u64;
                let low = counts
                    .iter()
                    .position(|&c| {
                        seen += c as u64;
                        seen > offset
                    })
                    .expect("offset within the bucket");
                from_ordered_bits(((bucket as u32) << BUCKET_BITS) | low as u32) as f64
            }
        }
    }
}

/// A sample's voxels as runs of (sample, value, count), produced afresh for each pass.
trait Runs {
    fn for_each(&self, f: impl FnMut(usize, f32, u32));
}

/// Voxels with labels, each in the sample its label maps to (or in none).
struct Labelled<'a, G> {
    values: &'a [f32],
    labels: &'a [u16],
    sample_of: G,
}

impl<G: Fn(u16) -> Option<usize>> Runs for Labelled<'_, G> {
    fn for_each(&self, mut f: impl FnMut(usize, f32, u32)) {
        keyed_runs(self.values, self.labels, |label, v, count| {
            if let Some(g) = (self.sample_of)(label) {
                f(g, v, count);
            }
        });
    }
}

/// One sample given as rows of voxels.
struct Rows<'a>(&'a [&'a [f32]]);

impl Runs for Rows<'_> {
    fn for_each(&self, mut f: impl FnMut(usize, f32, u32)) {
        for row in self.0 {
            value_runs(row, |v, count| f(0, v, count));
        }
    }
}

/// One sample's ranks: (rank, bucket, offset in bucket, slot index).
type Plan = Vec<(u64, usize, u64, usize)>;

/// Figures of `groups` samples of `values`, where voxel i belongs to sample
/// `sample_of(labels[i])` (or to none), followed by one figure per entry of `unions`, each the
/// union of the listed samples. An empty sample is taken as the value 0, as MONAI does.
pub fn grouped_stats(
    values: &[f32],
    labels: &[u16],
    groups: usize,
    sample_of: impl Fn(u16) -> Option<usize>,
    unions: &[Vec<usize>],
) -> Vec<SampleStats> {
    let samples = groups + unions.len();
    let mut counts = vec![Window::new(0u32); samples];
    let voxels = Labelled {
        values,
        labels,
        sample_of,
    };
    let mut sums = vec![Sums::default(); groups];
    voxels.for_each(|g, v, count| {
        *counts[g].cell((ordered_bits(v) >> BUCKET_BITS) as usize) += count;
        sums[g].add(v, count);
    });
    let mut moments: Vec<Moments> = sums.iter().map(Sums::moments).collect();
    let mut unions_of: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (u, members) in unions.iter().enumerate() {
        let s = groups + u;
        let mut merged = Moments::default();
        for &g in members {
            unions_of[g].push(s);
            merged.merge_scaled(&moments[g], 1.0);
            let (head, tail) = counts.split_at_mut(s);
            for (key, &c) in head[g].iter().filter(|(_, c)| **c > 0) {
                *tail[0].cell(key) += c;
            }
        }
        moments.push(merged);
    }
    resolve(&voxels, &unions_of, &mut counts, &moments)
}

/// The figures of one sample (given as rows of voxels), with its exact moments and quantile
/// sketch, in the same two passes (the sketch's buckets refine pass 1's).
pub fn sample_with_distribution(rows: &[&[f32]]) -> (SampleStats, Moments, QuantileSketch) {
    let mut sketch = SketchBuilder::new();
    let mut sums = Sums::default();
    let voxels = Rows(rows);
    voxels.for_each(|_, v, count| {
        sketch.add(v, count);
        sums.add(v, count);
    });
    let mut counts = sketch.coarse_counts(BUCKET_BITS);
    let moments = sums.moments();
    let stats = resolve(
        &voxels,
        &[Vec::new()],
        std::slice::from_mut(&mut counts),
        &[moments],
    );
    (stats[0], moments, sketch.finish())
}

/// Plans every sample's ranks from its bucket counts, runs pass 2 over the target buckets of
/// `voxels`, and finishes the figures. `counts` holds each sample's
/// bucket counts (groups, then unions).
fn resolve(
    voxels: &impl Runs,
    unions_of: &[Vec<usize>],
    counts: &mut [Window<u32>],
    moments: &[Moments],
) -> Vec<SampleStats> {
    let mut slots: Vec<Slot> = Vec::new();
    let plans: Vec<Plan> = counts
        .iter_mut()
        .zip(moments)
        .map(|(c, m)| plan(c, m.weight as u64, &mut slots))
        .collect();
    // Buckets that any sample looks into: most voxels are passed over on this alone.
    let mut targeted = Window::new(false);
    for c in counts.iter() {
        for (key, _) in c.iter().filter(|(_, mark)| **mark > 0) {
            *targeted.cell(key) = true;
        }
    }
    voxels.for_each(|g, v, count| {
        let bucket = (ordered_bits(v) >> BUCKET_BITS) as usize;
        if !targeted.get(bucket) {
            return;
        }
        for s in std::iter::once(g).chain(unions_of[g].iter().copied()) {
            let mark = counts[s].get(bucket);
            if mark > 0 {
                match &mut slots[mark as usize - 1] {
                    Slot::Values(list) => list.extend(std::iter::repeat_n(v, count as usize)),
                    Slot::LowBits(low) => low[(ordered_bits(v) & 0xffff) as usize] += count,
                }
            }
        }
    });
    plans
        .iter()
        .zip(moments)
        .map(|(plan, m)| finish(plan, m, &mut slots))
        .collect()
}

/// Finds the buckets of the ranks a sample needs and replaces its counts with slot marks
/// (slot index + 1 on target buckets, 0 elsewhere).
fn plan(counts: &mut Window<u32>, n: u64, slots: &mut Vec<Slot>) -> Plan {
    let first = counts.first_key();
    let cells = counts.cells_mut();
    if n == 0 {
        cells.fill(0);
        return Plan::new();
    }
    let mut wanted: Vec<u64> = vec![(n - 1) / 2];
    for q in PERCENTILES {
        let k = (q / 100.0 * (n - 1) as f64).floor() as u64;
        wanted.extend([k, (k + 1).min(n - 1)]);
    }
    wanted.sort_unstable();
    wanted.dedup();
    let mut ranks = Plan::with_capacity(wanted.len());
    let mut marks: Vec<(usize, u32)> = Vec::new();
    let (mut cell, mut below) = (0usize, 0u64);
    for rank in wanted {
        while below + cells[cell] as u64 <= rank {
            below += cells[cell] as u64;
            cell += 1;
        }
        let slot = match marks.iter().find(|(c, _)| *c == cell) {
            Some(&(_, slot)) => slot as usize,
            None => {
                let size = cells[cell];
                slots.push(if size > GATHER_LIMIT {
                    Slot::LowBits(vec![0; BUCKETS])
                } else {
                    Slot::Values(Vec::with_capacity(size as usize))
                });
                marks.push((cell, slots.len() as u32 - 1));
                slots.len() - 1
            }
        };
        ranks.push((rank, first + cell, rank - below, slot));
    }
    cells.fill(0);
    for (cell, slot) in marks {
        cells[cell] = slot + 1;
    }
    ranks
}

fn finish(plan: &Plan, m: &Moments, slots: &mut [Slot]) -> SampleStats {
    if m.weight == 0.0 {
        return SampleStats::of(&mut []);
    }
    let mut at = |rank: u64| -> f64 {
        let &(_, bucket, offset, slot) = plan.iter().find(|r| r.0 == rank).expect("planned rank");
        slots[slot].value_at(bucket, offset)
    };
    let n = m.weight;
    SampleStats {
        max: m.max,
        mean: m.mean,
        median: at((n as u64 - 1) / 2),
        min: m.min,
        stdev: m.stdev(),
        percentile: PERCENTILES.map(|q| linear_percentile(n, q, |r| at(r as u64))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoseg_datasets::rng::Rng;

    fn assert_close(a: &SampleStats, b: &SampleStats) {
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(1.0);
        assert!(
            close(a.mean, b.mean) && close(a.stdev, b.stdev),
            "{a:?} vs {b:?}"
        );
        assert_eq!(
            (a.min, a.max, a.median, a.percentile),
            (b.min, b.max, b.median, b.percentile)
        );
    }

    fn values(n: usize) -> Vec<f32> {
        let mut rng = Rng::new(11);
        (0..n)
            .map(|i| {
                let u = rng.uniform() as f32;
                // A big constant background (one huge bucket, in runs), negatives, a spread.
                if i % 3 == 0 || (i / 64) % 5 == 0 {
                    -0.7
                } else {
                    (u - 0.4) * 300.0
                }
            })
            .collect()
    }

    #[test]
    fn equals_sorting_each_sample() {
        let n = 200_000;
        let values = values(n);
        // Labels in runs too (blocks of 9 voxels), 6 of them in 4 samples, 6 in none.
        let labels: Vec<u16> = (0..n).map(|i| ((i / 9) % 7) as u16).collect();
        let sample_of = |l: u16| if l == 6 { None } else { Some(l as usize % 4) };
        let group = |i: usize| sample_of(labels[i]);
        let unions = vec![vec![1, 2, 3], vec![0]];
        let got = grouped_stats(&values, &labels, 4, sample_of, &unions);
        let sample = |keep: &dyn Fn(usize) -> bool| {
            let mut v: Vec<f32> = (0..n)
                .filter(|&i| group(i).is_some_and(keep))
                .map(|i| values[i])
                .collect();
            SampleStats::of(&mut v)
        };
        for (g, stats) in got.iter().take(4).enumerate() {
            assert_close(stats, &sample(&|x| x == g));
        }
        assert_close(&got[4], &sample(&|x| x >= 1));
        assert_close(&got[5], &sample(&|x| x == 0));
    }

    #[test]
    fn one_sample_with_its_distribution() {
        let mut v = values(50_000);
        let (stats, moments, sketch) = sample_with_distribution(&[&v[..20_000], &v[20_000..]]);
        assert_eq!(moments.weight, 50_000.0);
        assert_eq!(sketch, QuantileSketch::of(&v));
        assert_close(&stats, &SampleStats::of(&mut v));
    }

    #[test]
    fn an_empty_sample_is_zero() {
        let got = grouped_stats(&[1.0, 2.0], &[0, 0], 2, |_| Some(0), &[]);
        assert_eq!(got[1], SampleStats::of(&mut []));
        assert_eq!(got[0].median, 1.0);
    }
}

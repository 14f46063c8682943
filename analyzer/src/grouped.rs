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
use autoseg_kernels::runs::{keyed_runs, value_runs};

use crate::sample::{PERCENTILES, SampleStats, linear_percentile};
use crate::sketch::{Distribution, Moments, SketchBuilder};
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

/// The samples the analyzer takes from one channel, measured together: one traversal of the
/// channel per pass serves all of them.
///
/// - Label samples: voxel i belongs to sample `sample_of(labels[i])` (or to none), for
///   `groups` samples; then one sample per entry of `unions`, each the union of the listed
///   label samples.
/// - The row sample: every voxel of the rows (runs of `row_len` voxels) that `rows` marks.
pub struct ChannelSamples<'a, G> {
    pub values: &'a [f32],
    /// Per voxel, its label; `None` takes no label samples.
    pub labels: Option<&'a [u16]>,
    pub row_len: usize,
    /// Per row, whether the row sample holds it.
    pub rows: &'a [bool],
    pub groups: usize,
    pub sample_of: G,
    pub unions: &'a [Vec<usize>],
}

/// What [`ChannelSamples::measure`] finds. An empty sample is taken as the value 0, as MONAI
/// does.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStats {
    /// The label samples' figures: groups, then unions.
    pub labelled: Vec<SampleStats>,
    /// Each union's distribution.
    pub union_distributions: Vec<Distribution>,
    /// The row sample's figures and distribution.
    pub rows: SampleStats,
    pub rows_distribution: Distribution,
}

impl<G: Fn(u16) -> Option<usize>> ChannelSamples<'_, G> {
    /// Measures every sample in two passes over the channel.
    pub fn measure(&self) -> ChannelStats {
        let groups = self.groups;
        // Sample numbers: groups, unions, then the row sample.
        let row_sample = groups + self.unions.len();
        let mut unions_of: Vec<Vec<usize>> = vec![Vec::new(); groups];
        for (u, members) in self.unions.iter().enumerate() {
            for &g in members {
                unions_of[g].push(groups + u);
            }
        }
        let mut counts = vec![Window::new(0u32); groups];
        // Per label sample, the sums of its voxels outside and inside the marked rows: a voxel
        // is added once, and the row sample's sums are the inside ones (with the row voxels
        // of no label sample, `loose`).
        let mut sums = vec![[Sums::default(); 2]; groups];
        let mut loose = Sums::default();
        let mut sketches: Vec<SketchBuilder> =
            self.unions.iter().map(|_| SketchBuilder::new()).collect();
        let mut row_sketch = SketchBuilder::new();
        self.for_each_run(|group, in_rows, v, count| {
            match group {
                Some(g) => {
                    *counts[g].cell((ordered_bits(v) >> BUCKET_BITS) as usize) += count;
                    sums[g][usize::from(in_rows)].add(v, count);
                    for &s in &unions_of[g] {
                        sketches[s - groups].add(v, count);
                    }
                }
                None => loose.add(v, count),
            }
            if in_rows {
                row_sketch.add(v, count);
            }
        });
        let mut row_moments = loose.moments();
        let mut moments: Vec<Moments> = sums
            .iter()
            .map(|[outside, inside]| {
                let inside = inside.moments();
                row_moments.merge_scaled(&inside, 1.0);
                let mut all = outside.moments();
                all.merge_scaled(&inside, 1.0);
                all
            })
            .collect();
        for members in self.unions {
            let mut merged = Moments::default();
            let mut union_counts = Window::new(0u32);
            for &g in members {
                merged.merge_scaled(&moments[g], 1.0);
                for (key, &c) in counts[g].iter().filter(|(_, c)| **c > 0) {
                    *union_counts.cell(key) += c;
                }
            }
            moments.push(merged);
            counts.push(union_counts);
        }
        moments.push(row_moments);
        counts.push(row_sketch.coarse_counts(BUCKET_BITS));
        let samples_of = |group: Option<usize>, in_rows: bool| {
            let labelled = group
                .into_iter()
                .flat_map(|g| std::iter::once(g).chain(unions_of[g].iter().copied()));
            labelled.chain(in_rows.then_some(row_sample))
        };
        let mut stats = self.resolve(samples_of, &mut counts, &moments);
        let rows = stats.pop().expect("the row sample");
        let union_distributions = sketches
            .into_iter()
            .zip(&moments[groups..row_sample])
            .map(|(sketch, &moments)| Distribution {
                moments,
                sketch: sketch.finish(),
            })
            .collect();
        ChannelStats {
            labelled: stats,
            union_distributions,
            rows,
            rows_distribution: Distribution {
                moments: moments[row_sample],
                sketch: row_sketch.finish(),
            },
        }
    }

    /// Calls `f(label sample, in the row sample, value, count)` for each run of voxels of one
    /// value (and one label) within a row, skipping runs that belong to no sample.
    fn for_each_run(&self, mut f: impl FnMut(Option<usize>, bool, f32, u32)) {
        let rows = self.values.chunks(self.row_len.max(1)).zip(self.rows);
        match self.labels {
            Some(labels) => {
                let label_rows = labels.chunks(self.row_len.max(1));
                for ((values, &in_rows), labels) in rows.zip(label_rows) {
                    keyed_runs(values, labels, |label, v, count| {
                        let group = (self.sample_of)(label);
                        if group.is_some() || in_rows {
                            f(group, in_rows, v, count);
                        }
                    });
                }
            }
            None => {
                for (values, _) in rows.filter(|(_, in_rows)| **in_rows) {
                    value_runs(values, |v, count| f(None, true, v, count));
                }
            }
        }
    }

    /// Plans every sample's ranks from its bucket counts (`counts`, indexed by sample), runs
    /// pass 2 over the target buckets, and finishes the figures. `samples_of(group, in_rows)`
    /// lists the samples a run belongs to.
    fn resolve<I: Iterator<Item = usize>>(
        &self,
        samples_of: impl Fn(Option<usize>, bool) -> I,
        counts: &mut [Window<u32>],
        moments: &[Moments],
    ) -> Vec<SampleStats> {
        let mut slots: Vec<Slot> = Vec::new();
        let plans: Vec<Plan> = counts
            .iter_mut()
            .zip(moments)
            .map(|(c, m)| plan(c, m.weight as u64, &mut slots))
            .collect();
        // Buckets that any sample looks into: most voxels are passed over on this alone, a
        // test the run loop keeps inline; a run in a target bucket goes on to `collect_run`.
        let mut targeted = vec![0u64; BUCKETS / 64];
        for c in counts.iter() {
            for (key, _) in c.iter().filter(|(_, mark)| **mark > 0) {
                targeted[key / 64] |= 1 << (key % 64);
            }
        }
        self.for_each_run(|group, in_rows, v, count| {
            let bucket = (ordered_bits(v) >> BUCKET_BITS) as usize;
            if targeted[bucket / 64] >> (bucket % 64) & 1 != 0 {
                let samples = samples_of(group, in_rows);
                collect_run(samples, counts, &mut slots, bucket, v, count);
            }
        });
        plans
            .iter()
            .zip(moments)
            .map(|(plan, m)| finish(plan, m, &mut slots))
            .collect()
    }
}

/// Pass 2 for a run of `count` voxels of value `v` in target bucket `bucket`: into the slot of
/// each of its `samples` that looks into that bucket.
#[inline(never)]
fn collect_run(
    samples: impl Iterator<Item = usize>,
    counts: &[Window<u32>],
    slots: &mut [Slot],
    bucket: usize,
    v: f32,
    count: u32,
) {
    for s in samples {
        let mark = counts[s].get(bucket);
        if mark > 0 {
            match &mut slots[mark as usize - 1] {
                Slot::Values(list) => list.extend(std::iter::repeat_n(v, count as usize)),
                Slot::LowBits(low) => low[(ordered_bits(v) & 0xffff) as usize] += count,
            }
        }
    }
}

/// One sample's ranks: (rank, bucket, offset in bucket, slot index).
type Plan = Vec<(u64, usize, u64, usize)>;

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

    /// The figures and distribution of the voxels `keep` takes.
    fn reference(values: &[f32], keep: impl Fn(usize) -> bool) -> (SampleStats, Distribution) {
        let mut v: Vec<f32> = (0..values.len())
            .filter(|&i| keep(i))
            .map(|i| values[i])
            .collect();
        let dist = Distribution::of(&v);
        (SampleStats::of(&mut v), dist)
    }

    fn assert_same_distribution(got: &Distribution, want: &Distribution) {
        assert_eq!(got.sketch, want.sketch);
        let (a, b) = (got.moments, want.moments);
        assert_eq!((a.weight, a.min, a.max), (b.weight, b.min, b.max));
        assert!((a.mean - b.mean).abs() <= 1e-9 * b.mean.abs().max(1.0));
        assert!((a.m2 - b.m2).abs() <= 1e-9 * b.m2);
    }

    #[test]
    fn equals_sorting_each_sample() {
        let (n, row_len) = (200_000, 100);
        let values = values(n);
        // Labels in runs too (blocks of 9 voxels), 6 of them in 4 samples, 6 in none.
        let labels: Vec<u16> = (0..n).map(|i| ((i / 9) % 7) as u16).collect();
        let sample_of = |l: u16| if l == 6 { None } else { Some(l as usize % 4) };
        let group = |i: usize| sample_of(labels[i]);
        let unions = vec![vec![1, 2, 3], vec![0]];
        // The row sample: rows 300..1500 but every fourth.
        let rows: Vec<bool> = (0..n / row_len)
            .map(|r| (300..1500).contains(&r) && r % 4 != 0)
            .collect();
        let got = ChannelSamples {
            values: &values,
            labels: Some(&labels),
            row_len,
            rows: &rows,
            groups: 4,
            sample_of,
            unions: &unions,
        }
        .measure();
        let sample =
            |keep: &dyn Fn(usize) -> bool| reference(&values, |i| group(i).is_some_and(keep));
        for (g, stats) in got.labelled.iter().take(4).enumerate() {
            assert_close(stats, &sample(&|x| x == g).0);
        }
        let keeps: [&dyn Fn(usize) -> bool; 2] = [&|x| x >= 1, &|x| x == 0];
        for (u, keep) in keeps.into_iter().enumerate() {
            let (stats, dist) = sample(keep);
            assert_close(&got.labelled[4 + u], &stats);
            assert_same_distribution(&got.union_distributions[u], &dist);
        }
        let (stats, dist) = reference(&values, |i| rows[i / row_len]);
        assert_close(&got.rows, &stats);
        assert_same_distribution(&got.rows_distribution, &dist);
    }

    #[test]
    fn rows_without_labels() {
        let v = values(50_000);
        let rows: Vec<bool> = (0..500).map(|r| r % 7 != 3).collect();
        let got = ChannelSamples {
            values: &v,
            labels: None,
            row_len: 100,
            rows: &rows,
            groups: 0,
            sample_of: |_| None,
            unions: &[],
        }
        .measure();
        let (stats, dist) = reference(&v, |i| rows[i / 100]);
        assert_close(&got.rows, &stats);
        assert_same_distribution(&got.rows_distribution, &dist);
        assert!(got.labelled.is_empty() && got.union_distributions.is_empty());
    }

    #[test]
    fn an_empty_sample_is_zero() {
        let got = ChannelSamples {
            values: &[1.0, 2.0],
            labels: Some(&[0, 0]),
            row_len: 2,
            rows: &[false],
            groups: 2,
            sample_of: |_| Some(0),
            unions: &[],
        }
        .measure();
        assert_eq!(got.labelled[1], SampleStats::of(&mut []));
        assert_eq!(got.rows, SampleStats::of(&mut []));
        assert_eq!(got.labelled[0].median, 1.0);
    }
}

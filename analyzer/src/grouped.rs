//! MONAI's per-sample figures ([`SampleStats`]) for many samples of one channel at once, in two
//! passes over the voxels and without sorting them: a radix select.
//!
//! Pass 1 counts every sample's values in 65536 buckets of the top 16 bits of the value's
//! order-preserving bit pattern (and sums, min, max). The cumulative counts then name the
//! bucket, and the rank inside it, of every order statistic the figures need (median and the
//! two neighbours of each percentile). Pass 2 accumulates squared deviations from the exact
//! mean and looks inside those few buckets only: a small one keeps its values, a large one
//! counts its values by their low 16 bits. Either way the order statistics come out exact,
//! equal to what a full sort gives.

use crate::sample::{PERCENTILES, SampleStats, linear_percentile};

const BUCKETS: usize = 1 << 16;
/// A target bucket holding more values than this is resolved by a second histogram.
const GATHER_LIMIT: u32 = 1 << 14;

fn ordered(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | (1 << 31)
    }
}

fn from_ordered(o: u32) -> f32 {
    f32::from_bits(if o >> 31 == 1 { o & !(1 << 31) } else { !o })
}

/// What pass 1 learns of one sample.
#[derive(Clone)]
struct Tally {
    n: u64,
    sum: f64,
    min: f32,
    max: f32,
    m2: f64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            n: 0,
            sum: 0.0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            m2: 0.0,
        }
    }
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.n += other.n;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    fn mean(&self) -> f64 {
        if self.n > 0 {
            self.sum / self.n as f64
        } else {
            0.0
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
                from_ordered(((bucket as u32) << 16) | low as u32) as f64
            }
        }
    }
}

/// One sample's plan: which ranks it needs, in which buckets.
struct Plan {
    /// (rank, bucket, offset in bucket, slot index)
    ranks: Vec<(u64, usize, u64, usize)>,
}

/// Figures of `groups` samples of `values`, where voxel i belongs to sample `group_of(i)` (or to
/// none), followed by one figure per entry of `unions`, each the union of the listed samples.
/// An empty sample is taken as the value 0, as MONAI does.
pub fn grouped_stats(
    values: &[f32],
    groups: usize,
    group_of: impl Fn(usize) -> Option<usize>,
    unions: &[Vec<usize>],
) -> Vec<SampleStats> {
    let samples = groups + unions.len();
    let mut counts = vec![0u32; samples * BUCKETS];
    let mut tallies = vec![Tally::default(); samples];
    for (i, &v) in values.iter().enumerate() {
        if let Some(g) = group_of(i) {
            counts[g * BUCKETS + (ordered(v) >> 16) as usize] += 1;
            let t = &mut tallies[g];
            t.n += 1;
            t.sum += v as f64;
            t.min = t.min.min(v);
            t.max = t.max.max(v);
        }
    }
    // Unions: add the members' counts and tallies; record each group's unions.
    let mut unions_of: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (u, members) in unions.iter().enumerate() {
        let s = groups + u;
        for &g in members {
            unions_of[g].push(s);
            let (head, tail) = counts.split_at_mut(s * BUCKETS);
            for (dst, src) in tail[..BUCKETS]
                .iter_mut()
                .zip(&head[g * BUCKETS..(g + 1) * BUCKETS])
            {
                *dst += src;
            }
            let t = tallies[g].clone();
            tallies[s].add(&t);
        }
    }
    // Plans, and target buckets marked in place of their counts (slot index + 1).
    let mut slots: Vec<Slot> = Vec::new();
    let plans: Vec<Plan> = (0..samples)
        .map(|s| {
            plan(
                &mut counts[s * BUCKETS..(s + 1) * BUCKETS],
                tallies[s].n,
                &mut slots,
            )
        })
        .collect();
    let means: Vec<f64> = tallies.iter().map(Tally::mean).collect();
    // Buckets that any sample looks into: most voxels are passed over on this alone.
    let mut targeted = vec![false; BUCKETS];
    for (i, &mark) in counts.iter().enumerate() {
        targeted[i % BUCKETS] |= mark > 0;
    }
    for (i, &v) in values.iter().enumerate() {
        let Some(g) = group_of(i) else { continue };
        let deviation = v as f64 - means[g];
        tallies[g].m2 += deviation * deviation;
        for &s in &unions_of[g] {
            let deviation = v as f64 - means[s];
            tallies[s].m2 += deviation * deviation;
        }
        let bucket = (ordered(v) >> 16) as usize;
        if !targeted[bucket] {
            continue;
        }
        for s in std::iter::once(g).chain(unions_of[g].iter().copied()) {
            let mark = counts[s * BUCKETS + bucket];
            if mark > 0 {
                match &mut slots[mark as usize - 1] {
                    Slot::Values(list) => list.push(v),
                    Slot::LowBits(low) => low[(ordered(v) & 0xffff) as usize] += 1,
                }
            }
        }
    }
    plans
        .iter()
        .zip(&tallies)
        .map(|(plan, t)| finish(plan, t, &mut slots))
        .collect()
}

/// Finds the buckets of the ranks a sample needs and replaces their counts with slot marks
/// (every other count with 0).
fn plan(counts: &mut [u32], n: u64, slots: &mut Vec<Slot>) -> Plan {
    if n == 0 {
        counts.fill(0);
        return Plan { ranks: Vec::new() };
    }
    let mut wanted: Vec<u64> = vec![(n - 1) / 2];
    for q in PERCENTILES {
        let k = (q / 100.0 * (n - 1) as f64).floor() as u64;
        wanted.extend([k, (k + 1).min(n - 1)]);
    }
    wanted.sort_unstable();
    wanted.dedup();
    let mut ranks = Vec::with_capacity(wanted.len());
    let mut marks: Vec<(usize, u32)> = Vec::new();
    let (mut bucket, mut below) = (0usize, 0u64);
    for rank in wanted {
        while below + counts[bucket] as u64 <= rank {
            below += counts[bucket] as u64;
            bucket += 1;
        }
        let slot = match marks.iter().find(|(b, _)| *b == bucket) {
            Some(&(_, slot)) => slot as usize,
            None => {
                let size = counts[bucket];
                slots.push(if size > GATHER_LIMIT {
                    Slot::LowBits(vec![0; BUCKETS])
                } else {
                    Slot::Values(Vec::with_capacity(size as usize))
                });
                marks.push((bucket, slots.len() as u32 - 1));
                slots.len() - 1
            }
        };
        ranks.push((rank, bucket, rank - below, slot));
    }
    counts.fill(0);
    for (bucket, slot) in marks {
        counts[bucket] = slot + 1;
    }
    Plan { ranks }
}

fn finish(plan: &Plan, t: &Tally, slots: &mut [Slot]) -> SampleStats {
    if t.n == 0 {
        return SampleStats::of(&mut []);
    }
    let mut at = |rank: u64| -> f64 {
        let &(_, bucket, offset, slot) = plan
            .ranks
            .iter()
            .find(|r| r.0 == rank)
            .expect("planned rank");
        slots[slot].value_at(bucket, offset)
    };
    let n = t.n;
    let percentile = PERCENTILES.map(|q| linear_percentile(n as f64, q, |r| at(r as u64)));
    SampleStats {
        max: t.max as f64,
        mean: t.mean(),
        median: at((n - 1) / 2),
        min: t.min as f64,
        stdev: (t.m2 / n as f64).sqrt(),
        percentile,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn equals_sorting_each_sample() {
        let mut state = 11u64;
        let n = 200_000;
        let values: Vec<f32> = (0..n)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (state >> 40) as f32 / (1u64 << 24) as f32;
                // A big constant background (one huge bucket), negatives, and a spread.
                if i % 3 == 0 { -0.7 } else { (u - 0.4) * 300.0 }
            })
            .collect();
        let group = |i: usize| if i % 7 == 6 { None } else { Some(i % 4) };
        let unions = vec![vec![1, 2, 3], vec![0]];
        let got = grouped_stats(&values, 4, group, &unions);
        let sample = |keep: &dyn Fn(usize) -> bool| {
            let mut v: Vec<f32> = (0..n)
                .filter(|&i| group(i).is_some_and(|g| keep(g)))
                .map(|i| values[i])
                .collect();
            SampleStats::of(&mut v)
        };
        for g in 0..4 {
            assert_close(&got[g], &sample(&|x| x == g));
        }
        assert_close(&got[4], &sample(&|x| x >= 1));
        assert_close(&got[5], &sample(&|x| x == 0));
    }

    #[test]
    fn an_empty_sample_is_zero() {
        let got = grouped_stats(&[1.0, 2.0], 2, |_| Some(0), &[]);
        assert_eq!(got[1], SampleStats::of(&mut []));
        assert_eq!(got[0].median, 1.0);
    }
}

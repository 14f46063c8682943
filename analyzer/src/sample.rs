//! Statistics of one sample of intensities, as MONAI's `SampleOperations` computes them per case.

use serde::{Deserialize, Serialize};

/// The percentiles MONAI reports: 0.5, 10, 90 and 99.5.
pub const PERCENTILES: [f64; 4] = [0.5, 10.0, 90.0, 99.5];

pub use autoseg_kernels::linear_percentile;

/// MONAI's per-sample intensity figures.
///
/// The definitions follow MONAI on a torch tensor: `median` is torch's lower median (the
/// element at rank (n-1)/2, not the mean of the two middle ones), `stdev` divides by n, and the
/// percentiles interpolate linearly between order statistics (torch.quantile / numpy's
/// default). An empty sample is taken as the single value 0, as MONAI does.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleStats {
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    pub min: f64,
    pub stdev: f64,
    /// At [`PERCENTILES`].
    pub percentile: [f64; 4],
}

impl SampleStats {
    /// Computes the figures; `values` is reordered in place (partial selection, O(n)).
    pub fn of(values: &mut [f32]) -> SampleStats {
        if values.is_empty() {
            return SampleStats::of(&mut [0.0]);
        }
        let n = values.len();
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        let mut ranks: Vec<usize> = vec![0, n - 1, (n - 1) / 2];
        for q in PERCENTILES {
            let pos = q / 100.0 * (n - 1) as f64;
            ranks.push(pos.floor() as usize);
            ranks.push((pos.floor() as usize + 1).min(n - 1));
        }
        let order = OrderStats::select(values, ranks);
        let percentile =
            PERCENTILES.map(|q| linear_percentile(n as f64, q, |r| order.at(r as usize)));
        SampleStats {
            max: order.at(n - 1),
            mean,
            median: order.at((n - 1) / 2),
            min: order.at(0),
            stdev: var.sqrt(),
            percentile,
        }
    }
}

/// Chosen order statistics of a sample: (rank, value) pairs.
struct OrderStats(Vec<(usize, f64)>);

impl OrderStats {
    /// Finds the values at `ranks` by successive selection on the shrinking right part.
    fn select(values: &mut [f32], mut ranks: Vec<usize>) -> OrderStats {
        ranks.sort_unstable();
        ranks.dedup();
        let mut found = Vec::with_capacity(ranks.len());
        let mut start = 0;
        for rank in ranks {
            let (_, v, _) = values[start..].select_nth_unstable_by(rank - start, f32::total_cmp);
            found.push((rank, *v as f64));
            start = rank + 1;
        }
        OrderStats(found)
    }

    fn at(&self, rank: usize) -> f64 {
        self.0
            .iter()
            .find(|(r, _)| *r == rank)
            .map(|(_, v)| *v)
            .expect("rank was selected")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoseg_datasets::rng::Rng;

    #[test]
    fn matches_a_full_sort() {
        let mut rng = Rng::new(7);
        for n in [1usize, 2, 3, 10, 201, 1000] {
            let values: Vec<f32> = (0..n)
                .map(|_| rng.below(500) as f32 * 0.37 - 20.0)
                .collect();
            let mut sorted = values.clone();
            sorted.sort_by(f32::total_cmp);
            let stats = SampleStats::of(&mut values.clone());
            assert_eq!(stats.min, sorted[0] as f64);
            assert_eq!(stats.max, sorted[n - 1] as f64);
            assert_eq!(
                stats.median,
                sorted[(n - 1) / 2] as f64,
                "lower median, n = {n}"
            );
            for (i, q) in PERCENTILES.iter().enumerate() {
                let pos = q / 100.0 * (n - 1) as f64;
                let (k, t) = (pos.floor() as usize, pos.fract());
                let want = sorted[k] as f64 * (1.0 - t) + sorted[(k + 1).min(n - 1)] as f64 * t;
                assert!((stats.percentile[i] - want).abs() < 1e-9, "q {q} n {n}");
            }
        }
    }

    #[test]
    fn known_values() {
        // torch: median([1,2,3,4]) = 2 (lower), quantile(0.1) = 1.3, std(unbiased=False) = 1.118...
        let stats = SampleStats::of(&mut [4.0, 1.0, 3.0, 2.0]);
        assert_eq!(stats.median, 2.0);
        assert!((stats.percentile[1] - 1.3).abs() < 1e-12);
        assert!((stats.stdev - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(SampleStats::of(&mut []).max, 0.0);
    }
}

//! Drawing a trial's values from a search space: at random, or by TPE (the Tree-structured
//! Parzen Estimator of Bergstra et al. 2011, as Optuna and hyperopt use it): once a few
//! trials are scored, the observations are split into the best quarter ("good") and the rest
//! ("bad"); each parameter's good and bad values become Parzen densities l(x) and g(x)
//! (Gaussian kernels on the parameter's scale, logarithmic for log-uniform ones; smoothed
//! frequencies for choices); candidates are drawn from l and the one with the highest
//! l(x)/g(x) is taken. Parameters are treated independently, as in both peers' defaults.

use autoseg_datasets::rng::Rng;
use autoseg_templates::templates::search_space::{Range, SearchSpace};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use statrs::distribution::{Continuous, Normal};
use statrs::statistics::Distribution;

/// How values are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// Uniformly over each range.
    Random,
    /// Tree-structured Parzen Estimator, random for the first trials.
    Tpe,
}

/// Trials drawn at random before TPE models the scores (Optuna's default).
pub const TPE_STARTUP_TRIALS: usize = 10;
/// Share of scored trials that count as good.
const TPE_GAMMA: f64 = 0.25;
/// Candidates drawn from l(x) per parameter.
const TPE_CANDIDATES: usize = 24;

/// One scored trial: its values (by parameter, in the space's order) and score (higher is
/// better).
#[derive(Debug, Clone)]
pub struct Observation {
    /// The values.
    pub values: Vec<Value>,
    /// The score.
    pub score: f64,
}

/// Draws one trial's values.
pub fn sample(
    sampler: Sampler,
    space: &SearchSpace,
    observations: &[Observation],
    rng: &mut Rng,
) -> Vec<Value> {
    if sampler == Sampler::Random || observations.len() < TPE_STARTUP_TRIALS {
        return space
            .params
            .iter()
            .map(|p| uniform(&p.range, rng))
            .collect();
    }
    let mut sorted: Vec<&Observation> = observations.iter().collect();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    let good_count = ((sorted.len() as f64 * TPE_GAMMA).ceil() as usize).max(1);
    let (good, bad) = sorted.split_at(good_count);
    space
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let column = |set: &[&Observation]| -> Vec<Value> {
                set.iter().map(|o| o.values[i].clone()).collect()
            };
            tpe_draw(&p.range, &column(good), &column(bad), rng)
        })
        .collect()
}

/// A value drawn uniformly from a range.
fn uniform(range: &Range, rng: &mut Rng) -> Value {
    match range {
        Range::LogUniform { low, high } => json!(rng.range(low.ln(), high.ln()).exp()),
        Range::Uniform { low, high } => json!(rng.range(*low, *high)),
        Range::Choice { values } => values[rng.below(values.len())].clone(),
    }
}

/// The best of [`TPE_CANDIDATES`] draws from the good density by l(x)/g(x).
fn tpe_draw(range: &Range, good: &[Value], bad: &[Value], rng: &mut Rng) -> Value {
    match range {
        Range::Choice { values } => {
            let weights = |set: &[Value]| -> Vec<f64> {
                values
                    .iter()
                    .map(|v| (1 + set.iter().filter(|s| *s == v).count()) as f64)
                    .map(|w| w / (values.len() + set.len()) as f64)
                    .collect()
            };
            let (l, g) = (weights(good), weights(bad));
            let pick = |rng: &mut Rng| {
                let mut u = rng.uniform();
                l.iter()
                    .position(|w| {
                        u -= w;
                        u <= 0.0
                    })
                    .unwrap_or(l.len() - 1)
            };
            let best = (0..TPE_CANDIDATES)
                .map(|_| pick(rng))
                .max_by(|&a, &b| (l[a] / g[a]).total_cmp(&(l[b] / g[b])))
                .expect("candidates are drawn");
            values[best].clone()
        }
        Range::LogUniform { low, high } | Range::Uniform { low, high } => {
            let log = matches!(range, Range::LogUniform { .. });
            let to = |x: f64| if log { x.ln() } else { x };
            let (lo, hi) = (to(*low), to(*high));
            let points = |set: &[Value]| -> Vec<f64> {
                set.iter().filter_map(Value::as_f64).map(to).collect()
            };
            let (l, g) = (
                Parzen::new(&points(good), lo, hi),
                Parzen::new(&points(bad), lo, hi),
            );
            let best = (0..TPE_CANDIDATES)
                .map(|_| l.draw(rng))
                .max_by(|&a, &b| {
                    (l.density(a) / g.density(a)).total_cmp(&(l.density(b) / g.density(b)))
                })
                .expect("candidates are drawn");
            json!(if log { best.exp() } else { best })
        }
    }
}

/// A Parzen density on [lo, hi]: Gaussian kernels at the points plus one wide prior kernel
/// at the middle (so it is never zero), each bandwidth the distance to its farther
/// neighbour, clipped to [range/100, range] (Optuna's rule).
struct Parzen {
    kernels: Vec<Normal>,
    lo: f64,
    hi: f64,
}

impl Parzen {
    fn new(points: &[f64], lo: f64, hi: f64) -> Parzen {
        let span = (hi - lo).max(f64::MIN_POSITIVE);
        let mut centres: Vec<f64> = points.to_vec();
        centres.push((lo + hi) / 2.0);
        let mut sorted = centres.clone();
        sorted.sort_by(f64::total_cmp);
        let kernels = centres
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let sigma = if i == centres.len() - 1 {
                    span
                } else {
                    let at = sorted.partition_point(|&x| x < c);
                    let left = at.checked_sub(1).map_or(c - lo, |k| c - sorted[k]);
                    let right = sorted.get(at + 1).map_or(hi - c, |&x| x - c);
                    left.max(right).clamp(span / 100.0, span)
                };
                Normal::new(c, sigma).expect("a positive, finite bandwidth")
            })
            .collect();
        Parzen { kernels, lo, hi }
    }

    /// Mixture density (truncation to the range ignored: it scales l and g alike near the
    /// middle and only tilts the ratio at the edges).
    fn density(&self, x: f64) -> f64 {
        self.kernels.iter().map(|k| k.pdf(x)).sum::<f64>() / self.kernels.len() as f64
    }

    /// A draw: a kernel at random, then a normal draw from it, redrawn until in range.
    fn draw(&self, rng: &mut Rng) -> f64 {
        let k = &self.kernels[rng.below(self.kernels.len())];
        for _ in 0..64 {
            let x = k.mean().expect("normal") + k.std_dev().expect("normal") * rng.normal();
            if (self.lo..=self.hi).contains(&x) {
                return x;
            }
        }
        rng.range(self.lo, self.hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoseg_templates::templates::search_space::Param;

    fn space() -> SearchSpace {
        SearchSpace {
            params: vec![
                Param {
                    key: "learning_rate".into(),
                    range: Range::LogUniform {
                        low: 1e-4,
                        high: 1e-1,
                    },
                },
                Param {
                    key: "width".into(),
                    range: Range::Choice {
                        values: vec![json!(8), json!(16)],
                    },
                },
            ],
        }
    }

    #[test]
    fn random_draws_stay_in_their_ranges() {
        let mut rng = Rng::new(1);
        for _ in 0..200 {
            let v = sample(Sampler::Random, &space(), &[], &mut rng);
            let lr = v[0].as_f64().unwrap();
            assert!((1e-4..=1e-1).contains(&lr));
            assert!(v[1] == json!(8) || v[1] == json!(16));
        }
    }

    /// On a score that peaks at a learning rate of 1e-2 and prefers width 16, TPE's draws
    /// gather near the peak far more than random ones do.
    #[test]
    fn tpe_concentrates_where_the_scores_are_high() {
        let score = |v: &[Value]| {
            let lr = v[0].as_f64().unwrap();
            -(lr.log10() + 2.0).abs() + if v[1] == json!(16) { 0.5 } else { 0.0 }
        };
        let run_seed = |sampler: Sampler, seed: u64| {
            let mut rng = Rng::new(seed);
            let mut seen: Vec<Observation> = Vec::new();
            for _ in 0..40 {
                let values = sample(sampler, &space(), &seen, &mut rng);
                let s = score(&values);
                seen.push(Observation { values, score: s });
            }
            let last: Vec<f64> = seen[20..]
                .iter()
                .map(|o| (o.values[0].as_f64().unwrap().log10() + 2.0).abs())
                .collect();
            let wide: usize = seen[20..]
                .iter()
                .filter(|o| o.values[1] == json!(16))
                .count();
            (last.iter().sum::<f64>() / last.len() as f64, wide)
        };
        // Averaged over seeds: one search is noisy.
        let run = |sampler: Sampler| {
            (1..=6)
                .map(|seed| run_seed(sampler, seed))
                .fold((0.0, 0), |(d, w), (dd, ww)| (d + dd / 6.0, w + ww))
        };
        let (tpe_distance, tpe_wide) = run(Sampler::Tpe);
        let (random_distance, random_wide) = run(Sampler::Random);
        assert!(
            tpe_distance < 0.75 * random_distance,
            "{tpe_distance} vs {random_distance}"
        );
        assert!(tpe_wide > random_wide, "{tpe_wide} vs {random_wide}");
    }

    #[test]
    fn parzen_density_is_a_mixture_of_its_kernels() {
        let p = Parzen::new(&[0.0, 1.0], -1.0, 2.0);
        assert_eq!(p.kernels.len(), 3);
        assert!(p.density(0.0) > p.density(-1.0));
        let m: Vec<f64> = p.kernels.iter().map(|k| k.mean().unwrap()).collect();
        assert_eq!(m, vec![0.0, 1.0, 0.5]);
    }
}

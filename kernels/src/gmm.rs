//! Gaussian-mixture intensity segmentation: a K-component mixture fitted by
//! expectation-maximisation to a sample of intensities, then each voxel assigned to the
//! component of highest posterior. Components are kept sorted by mean, so component 0 is the
//! darkest. The E and M steps run in parallel chunks (rayon).

use rayon::prelude::*;

/// A fitted one-dimensional Gaussian mixture.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture {
    /// Mixing weights (sum to 1), by ascending mean.
    pub weights: Vec<f64>,
    pub means: Vec<f64>,
    pub variances: Vec<f64>,
    /// Mean log-likelihood per value at the last iteration.
    pub log_likelihood: f64,
    /// EM iterations run.
    pub iterations: usize,
}

/// Sufficient statistics of one E step: per component Σr, Σr·x, Σr·x², and the log-likelihood.
#[derive(Clone)]
pub(crate) struct Moments {
    pub r: Vec<f64>,
    pub rx: Vec<f64>,
    pub rxx: Vec<f64>,
    pub log_likelihood: f64,
}

impl Moments {
    fn zero(k: usize) -> Moments {
        Moments {
            r: vec![0.0; k],
            rx: vec![0.0; k],
            rxx: vec![0.0; k],
            log_likelihood: 0.0,
        }
    }

    fn merge(mut self, other: Moments) -> Moments {
        for c in 0..self.r.len() {
            self.r[c] += other.r[c];
            self.rx[c] += other.rx[c];
            self.rxx[c] += other.rxx[c];
        }
        self.log_likelihood += other.log_likelihood;
        self
    }
}

impl GaussianMixture {
    /// Fits `k` components to `values` (at least `k` finite values) by EM, starting from means
    /// at the (i + 0.5)/k quantiles; stops after `max_iterations` or when the mean
    /// log-likelihood improves by less than `tolerance`.
    ///
    /// # Panics
    /// When `k` is 0 or there are fewer than `k` values.
    pub fn fit(values: &[f32], k: usize, max_iterations: usize, tolerance: f64) -> GaussianMixture {
        let fitted = Self::fit_with(values, k, max_iterations, tolerance, |model| {
            Ok::<_, std::convert::Infallible>(model.expectation(values))
        });
        match fitted {
            Ok(model) => model,
        }
    }

    /// [`GaussianMixture::fit`] with the E step given (the CUDA path runs it on the GPU).
    pub(crate) fn fit_with<E>(
        values: &[f32],
        k: usize,
        max_iterations: usize,
        tolerance: f64,
        mut expectation: impl FnMut(&GaussianMixture) -> Result<Moments, E>,
    ) -> Result<GaussianMixture, E> {
        assert!(
            k > 0 && values.len() >= k,
            "need at least {k} values for {k} components"
        );
        let mut sorted: Vec<f32> = values.to_vec();
        sorted.sort_by(f32::total_cmp);
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let variance = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let floor = (variance * 1e-6).max(1e-12);
        let mut model = GaussianMixture {
            weights: vec![1.0 / k as f64; k],
            means: (0..k)
                .map(|i| {
                    sorted[((i as f64 + 0.5) / k as f64 * (sorted.len() - 1) as f64) as usize]
                        as f64
                })
                .collect(),
            variances: vec![(variance / (k * k) as f64).max(floor); k],
            log_likelihood: f64::NEG_INFINITY,
            iterations: 0,
        };
        for iteration in 1..=max_iterations {
            let stats = expectation(&model)?;
            let previous = model.log_likelihood;
            model.log_likelihood = stats.log_likelihood / n;
            model.iterations = iteration;
            for c in 0..k {
                let r = stats.r[c].max(1e-300);
                model.weights[c] = r / n;
                model.means[c] = stats.rx[c] / r;
                model.variances[c] = (stats.rxx[c] / r - model.means[c].powi(2)).max(floor);
            }
            if (model.log_likelihood - previous).abs() < tolerance {
                break;
            }
        }
        model.sort_by_mean();
        Ok(model)
    }

    fn sort_by_mean(&mut self) {
        let mut order: Vec<usize> = (0..self.means.len()).collect();
        order.sort_by(|&a, &b| self.means[a].total_cmp(&self.means[b]));
        let pick = |v: &Vec<f64>| order.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        (self.weights, self.means, self.variances) = (
            pick(&self.weights),
            pick(&self.means),
            pick(&self.variances),
        );
    }

    /// log(weight · N(x; mean, variance)) of every component for `x`.
    fn log_joint(&self, x: f64, out: &mut [f64]) {
        for (c, o) in out.iter_mut().enumerate() {
            let v = self.variances[c];
            *o = self.weights[c].ln()
                - 0.5 * ((2.0 * std::f64::consts::PI * v).ln() + (x - self.means[c]).powi(2) / v);
        }
    }

    fn expectation(&self, values: &[f32]) -> Moments {
        let k = self.means.len();
        values
            .par_chunks(1 << 14)
            .fold(
                || (Moments::zero(k), vec![0.0; k]),
                |(mut m, mut joint), chunk| {
                    for &v in chunk {
                        let x = v as f64;
                        self.log_joint(x, &mut joint);
                        let top = joint.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                        let total: f64 = joint.iter().map(|l| (l - top).exp()).sum();
                        m.log_likelihood += top + total.ln();
                        for (c, &l) in joint.iter().enumerate() {
                            let r = (l - top).exp() / total;
                            m.r[c] += r;
                            m.rx[c] += r * x;
                            m.rxx[c] += r * x * x;
                        }
                    }
                    (m, joint)
                },
            )
            .map(|(m, _)| m)
            .reduce(|| Moments::zero(k), Moments::merge)
    }

    /// The component of highest posterior for every value (0 = darkest).
    pub fn classify(&self, values: &[f32]) -> Vec<u16> {
        let k = self.means.len();
        values
            .par_iter()
            .map_init(
                || vec![0.0; k],
                |joint, &v| {
                    self.log_joint(v as f64, joint);
                    (0..k)
                        .max_by(|&a, &b| joint[a].total_cmp(&joint[b]))
                        .unwrap_or(0) as u16
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Lcg;

    /// Box-Muller normal draws.
    fn normal(rng: &mut Lcg, mean: f64, sd: f64) -> f32 {
        let (u, v) = (rng.next_unit().max(1e-12), rng.next_unit());
        (mean + sd * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }

    #[test]
    fn recovers_a_three_class_mixture_and_segments_it() {
        let mut rng = Lcg(11);
        let truth = [(0.5, 20.0, 5.0), (0.3, 80.0, 8.0), (0.2, 150.0, 10.0)];
        let mut values = Vec::new();
        let mut classes = Vec::new();
        for (c, &(w, m, s)) in truth.iter().enumerate() {
            for _ in 0..(w * 20_000.0) as usize {
                values.push(normal(&mut rng, m, s));
                classes.push(c as u16);
            }
        }
        let model = GaussianMixture::fit(&values, 3, 200, 1e-9);
        for (c, &(w, m, s)) in truth.iter().enumerate() {
            assert!(
                (model.weights[c] - w).abs() < 0.02,
                "weight {c}: {:?}",
                model.weights
            );
            assert!(
                (model.means[c] - m).abs() < 0.5,
                "mean {c}: {:?}",
                model.means
            );
            assert!(
                (model.variances[c].sqrt() - s).abs() < 0.5,
                "sd {c}: {:?}",
                model.variances
            );
        }
        let labels = model.classify(&values);
        let agree = labels.iter().zip(&classes).filter(|(a, b)| a == b).count();
        assert!(
            agree as f64 / values.len() as f64 > 0.99,
            "{agree} of {}",
            values.len()
        );
    }
}

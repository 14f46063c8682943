//! The learning-rate range test (Smith, 2017; MONAI's `LearningRateFinder`): train a few
//! steps with an exponentially growing rate, smooth the losses, stop when they diverge,
//! and suggest the rate where the loss fell fastest.

use serde::{Deserialize, Serialize};

/// The range test's settings (MONAI's defaults but for the start rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LrFinder {
    /// First rate tried.
    pub start_lr: f64,
    /// Last rate tried (if the loss has not diverged before).
    pub end_lr: f64,
    /// Steps, spread exponentially from start to end.
    pub iterations: usize,
    /// Weight of the new loss in the running average (MONAI's `smooth_f`).
    pub smoothing: f64,
    /// Stop once the smoothed loss exceeds this multiple of the best one.
    pub diverge_threshold: f64,
    /// Steps left out of the suggestion at the start (noisy) and at the end (diverging).
    pub skip_start: usize,
    /// See `skip_start`.
    pub skip_end: usize,
}

impl Default for LrFinder {
    fn default() -> Self {
        Self {
            start_lr: 1e-6,
            end_lr: 10.0,
            iterations: 100,
            smoothing: 0.05,
            diverge_threshold: 5.0,
            skip_start: 10,
            skip_end: 5,
        }
    }
}

/// The rates tried, their smoothed losses and the suggested rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrFinderResult {
    /// Rates, one per step taken.
    pub lrs: Vec<f64>,
    /// Smoothed losses, one per step taken.
    pub losses: Vec<f64>,
    /// Where the smoothed loss fell fastest; `None` when too few steps were left to judge.
    pub suggestion: Option<f64>,
}

impl LrFinder {
    /// The rate of step `i`.
    pub fn lr(&self, i: usize) -> f64 {
        let r = i as f64 / (self.iterations.max(2) - 1) as f64;
        self.start_lr * (self.end_lr / self.start_lr).powf(r)
    }

    /// Runs the test: `train_step(lr)` takes one training step at that rate and returns its
    /// loss. The caller restores the model's weights afterwards.
    pub fn run(&self, mut train_step: impl FnMut(f64) -> f64) -> LrFinderResult {
        let (mut lrs, mut losses) = (Vec::new(), Vec::<f64>::new());
        let mut best = f64::INFINITY;
        for i in 0..self.iterations {
            let lr = self.lr(i);
            let loss = train_step(lr);
            let smoothed = match losses.last() {
                Some(previous) => self.smoothing * loss + (1.0 - self.smoothing) * previous,
                None => loss,
            };
            if !smoothed.is_finite() {
                break;
            }
            lrs.push(lr);
            losses.push(smoothed);
            best = best.min(smoothed);
            if smoothed > self.diverge_threshold * best {
                break;
            }
        }
        let suggestion = self.steepest(&lrs, &losses);
        LrFinderResult {
            lrs,
            losses,
            suggestion,
        }
    }

    /// MONAI's `get_steepest_gradient`: the rate at the most negative `np.gradient` of the
    /// losses, ends skipped.
    fn steepest(&self, lrs: &[f64], losses: &[f64]) -> Option<f64> {
        let end = losses.len().checked_sub(self.skip_end)?;
        if end < self.skip_start + 2 {
            return None;
        }
        let window = &losses[self.skip_start..end];
        let gradient = |i: usize| match i {
            0 => window[1] - window[0],
            i if i == window.len() - 1 => window[i] - window[i - 1],
            i => (window[i + 1] - window[i - 1]) / 2.0,
        };
        let steepest = (0..window.len()).min_by(|&a, &b| gradient(a).total_cmp(&gradient(b)))?;
        Some(lrs[self.skip_start + steepest])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gradient descent on `x^2 / 2` from x = 1: the loss shrinks as `(1 - lr)^2` per step,
    /// fastest near lr = 1, and diverges past lr = 2.
    fn quadratic_test(finder: &LrFinder) -> LrFinderResult {
        let mut x = 1.0f64;
        finder.run(|lr| {
            x -= lr * x;
            0.5 * x * x
        })
    }

    #[test]
    fn rates_grow_exponentially_from_start_to_end() {
        let finder = LrFinder {
            start_lr: 1e-4,
            end_lr: 1.0,
            iterations: 5,
            ..LrFinder::default()
        };
        let lrs: Vec<f64> = (0..5).map(|i| finder.lr(i)).collect();
        for (got, want) in lrs.iter().zip([1e-4, 1e-3, 1e-2, 1e-1, 1.0]) {
            assert!((got / want - 1.0).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn stops_at_divergence_and_suggests_a_rate_that_converges() {
        let finder = LrFinder {
            start_lr: 1e-4,
            end_lr: 100.0,
            iterations: 60,
            ..LrFinder::default()
        };
        let result = quadratic_test(&finder);
        assert!(result.lrs.len() < 60, "the test ran past divergence");
        let last = *result.lrs.last().unwrap();
        assert!(last > 2.0, "stopped before the divergent rates ({last})");
        let suggestion = result.suggestion.unwrap();
        assert!(
            suggestion > 1e-3 && suggestion < 2.0,
            "suggested {suggestion}"
        );
    }

    #[test]
    fn too_short_a_run_makes_no_suggestion() {
        let finder = LrFinder {
            iterations: 12,
            ..LrFinder::default()
        };
        assert_eq!(quadratic_test(&finder).suggestion, None);
    }
}

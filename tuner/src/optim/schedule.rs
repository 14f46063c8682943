//! Learning-rate schedules: a pure function of the step, so a resumed run continues on the
//! same curve without any scheduler state to save.

use serde::{Deserialize, Serialize};

/// How the learning rate evolves over `total` steps from the base rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// MONAI's `WarmupCosineSchedule`: linear warm-up from `warmup_multiplier` x base, then
    /// a cosine decay (half a period by default), never below `end_lr` after warm-up.
    WarmupCosine {
        /// Steps of linear warm-up.
        #[serde(default)]
        warmup_steps: usize,
        /// Fraction of the base rate at step 0.
        #[serde(default)]
        warmup_multiplier: f64,
        /// Cosine periods over the decay (0.5: from base down to 0).
        #[serde(default = "half")]
        cycles: f64,
        /// Floor after warm-up.
        #[serde(default)]
        end_lr: f64,
    },
    /// nnU-Net's polynomial decay `base x (1 - step / total)^power` (PyTorch `PolynomialLR`).
    Polynomial {
        /// The exponent (nnU-Net: 0.9).
        #[serde(default = "nnunet_power")]
        power: f64,
    },
}

fn half() -> f64 {
    0.5
}
fn nnunet_power() -> f64 {
    0.9
}

impl Schedule {
    /// The learning rate at `step` (0-based) of `total`.
    pub fn lr(&self, base: f64, step: usize, total: usize) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::WarmupCosine {
                warmup_steps,
                warmup_multiplier,
                cycles,
                end_lr,
            } => {
                let warmup = (*warmup_steps).min(total);
                if step < warmup {
                    let f = step as f64 / warmup.max(1) as f64;
                    return base * (warmup_multiplier + (1.0 - warmup_multiplier) * f);
                }
                let progress =
                    (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * cycles * 2.0 * progress).cos());
                (base * cosine.max(0.0)).max(*end_lr)
            }
            Schedule::Polynomial { power } => {
                let left = 1.0 - step.min(total) as f64 / total.max(1) as f64;
                base * left.powf(*power)
            }
        }
    }
}

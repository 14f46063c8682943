//! Optimisers and learning-rate schedules, as a bundle configures them, with PyTorch's and
//! MONAI's update rules (checked step by step against them in `fixtures/optim`).
//!
//! AdamW and SGD are burn's (whose rules are PyTorch's); Novograd, the optimiser of
//! Auto3DSeg's SegResNet recipes, is written here after MONAI's.

mod lr_finder;
mod novograd;
mod schedule;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer, SgdConfig};
use serde::{Deserialize, Serialize};

pub use lr_finder::{LrFinder, LrFinderResult};
pub use novograd::Novograd;
pub use schedule::Schedule;

/// An optimiser as a bundle's `hyper_parameters.yaml` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Adam with decoupled weight decay (PyTorch's `AdamW`).
    AdamW {
        /// First-moment decay.
        #[serde(default = "beta1")]
        beta1: f64,
        /// Second-moment decay.
        #[serde(default = "beta2_adam")]
        beta2: f64,
        /// Added to the root of the second moment.
        #[serde(default = "eps")]
        eps: f64,
        /// Decoupled weight decay.
        #[serde(default = "decay_adamw")]
        weight_decay: f64,
    },
    /// SGD with (Nesterov) momentum: nnU-Net's `SGD(momentum=0.99, nesterov=True)`.
    Sgd {
        /// Momentum factor.
        #[serde(default = "momentum")]
        momentum: f64,
        /// Nesterov's look-ahead momentum.
        #[serde(default = "yes")]
        nesterov: bool,
        /// L2 penalty added to the gradient.
        #[serde(default = "decay_sgd")]
        weight_decay: f64,
    },
    /// MONAI's Novograd: layer-wise normalised gradients.
    Novograd(Novograd),
}

fn beta1() -> f64 {
    0.9
}
fn beta2_adam() -> f64 {
    0.999
}
fn eps() -> f64 {
    1e-8
}
fn decay_adamw() -> f64 {
    1e-5
}
fn momentum() -> f64 {
    0.99
}
fn yes() -> bool {
    true
}
fn decay_sgd() -> f64 {
    3e-5
}

impl Default for OptimizerConfig {
    /// AdamW with Auto3DSeg SegResNet's weight decay (1e-5).
    fn default() -> Self {
        OptimizerConfig::AdamW {
            beta1: beta1(),
            beta2: beta2_adam(),
            eps: eps(),
            weight_decay: decay_adamw(),
        }
    }
}

impl OptimizerConfig {
    /// nnU-Net's optimiser: SGD, Nesterov momentum 0.99, weight decay 3e-5.
    pub fn nnunet() -> Self {
        OptimizerConfig::Sgd {
            momentum: momentum(),
            nesterov: true,
            weight_decay: decay_sgd(),
        }
    }

    /// The optimiser for a whole module; the learning rate is given at each step.
    pub fn init(&self) -> ModuleOptimizer {
        match self {
            OptimizerConfig::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => AdamWConfig::new()
                .with_beta_1(*beta1 as f32)
                .with_beta_2(*beta2 as f32)
                .with_epsilon(*eps as f32)
                .with_weight_decay(*weight_decay as f32)
                .init(),
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                let momentum = (*momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(*momentum)
                        .with_dampening(0.0)
                        .with_nesterov(*nesterov)
                });
                let decay =
                    (*weight_decay > 0.0).then(|| WeightDecayConfig::new(*weight_decay as f32));
                SgdConfig::new()
                    .with_momentum(momentum)
                    .with_weight_decay(decay)
                    .init()
            }
            OptimizerConfig::Novograd(novograd) => ModuleOptimizer::from(novograd.clone()),
        }
    }
}

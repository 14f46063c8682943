//! Novograd (Ginsburg et al., 2019) as MONAI implements it: the second moment is one
//! number per parameter tensor (the squared gradient norm), so each layer's step is
//! normalised by its own gradient scale.

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Novograd's hyper-parameters (MONAI's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Novograd {
    /// First-moment decay.
    pub beta1: f64,
    /// Decay of the per-tensor squared gradient norm.
    pub beta2: f64,
    /// Added to the root of that norm.
    pub eps: f64,
    /// L2 penalty added to the normalised gradient.
    pub weight_decay: f64,
    /// Scale the normalised gradient by `1 - beta1` (an exponential average).
    pub grad_averaging: bool,
}

impl Default for Novograd {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-8,
            weight_decay: 0.0,
            grad_averaging: false,
        }
    }
}

/// The moments of one parameter tensor.
#[derive(Clone)]
pub struct NovogradState<const D: usize> {
    /// First moment, shaped like the parameter.
    pub exp_avg: Tensor<D>,
    /// Running squared gradient norm, one value.
    pub exp_avg_sq: Tensor<1>,
}

// burn's `RecordState` derive only works inside burn-optim; this is what it would write.
impl<const D: usize> RecordState for NovogradState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "exp_avg", self.exp_avg.to_data());
        out.push_tensor(prefix, "exp_avg_sq", self.exp_avg_sq.to_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        Some(Self {
            exp_avg: Tensor::from_data(src.take_tensor(prefix, "exp_avg")?, device),
            exp_avg_sq: Tensor::from_data(src.take_tensor(prefix, "exp_avg_sq")?, device),
        })
    }
}

impl Optimizer for Novograd {
    type State<const D: usize> = NovogradState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let norm = grad.clone().square().sum();
        let (exp_avg, exp_avg_sq) = match state {
            None => (grad.zeros_like(), norm),
            Some(state) => {
                // MONAI restarts the average while it is still exactly zero.
                let unset = state.exp_avg_sq.clone().equal_elem(0.0);
                let decayed = state.exp_avg_sq.mul_scalar(self.beta2)
                    + norm.clone().mul_scalar(1.0 - self.beta2);
                (state.exp_avg, decayed.mask_where(unset, norm))
            }
        };
        let denominator = exp_avg_sq
            .clone()
            .sqrt()
            .add_scalar(self.eps)
            .reshape([1; D]);
        let mut update = grad / denominator;
        if self.weight_decay != 0.0 {
            update = update + tensor.clone().mul_scalar(self.weight_decay);
        }
        if self.grad_averaging {
            update = update.mul_scalar(1.0 - self.beta1);
        }
        let exp_avg = exp_avg.mul_scalar(self.beta1) + update;
        let tensor = tensor - exp_avg.clone().mul_scalar(lr);
        (
            tensor,
            Some(NovogradState {
                exp_avg,
                exp_avg_sq,
            }),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        NovogradState {
            exp_avg: state.exp_avg.to_device(device),
            exp_avg_sq: state.exp_avg_sq.to_device(device),
        }
    }
}

//! The fused operation's contract, which each backend implements natively.
//!
//! With `x` one instance's channel (L values), `mu` and `rstd = 1 / sqrt(var + eps)` its
//! statistics, `xhat = (x - mu) * rstd`, `z = gamma * xhat + beta` and `y = act(z)`:
//!
//! - forward: `y`, plus `mu` and `rstd` per instance and channel for the backward pass;
//! - backward, from `dy`: `dz = dy * act'(z)` (read off `y`), then
//!   `dbeta = sum dz`, `dgamma = sum dz * xhat` (summed over instances too) and
//!   `dx = gamma * rstd * (dz - mean(dz) - xhat * mean(dz * xhat))`,
//!   the usual batch-norm gradient taken over one instance's channel.

use burn::backend::Backend;
use burn::backend::tensor::FloatTensor;

use super::Activation;

/// What the forward pass keeps for the backward pass.
pub type Forward<B> = (FloatTensor<B>, Statistics<B>);

/// Mean and reciprocal standard deviation per instance and channel, `[batch * channels]`.
#[derive(Debug, Clone)]
pub struct Statistics<B: Backend> {
    pub mean: FloatTensor<B>,
    pub rstd: FloatTensor<B>,
}

/// Gradients of `x`, `gamma` and `beta`.
pub type Gradients<B> = [FloatTensor<B>; 3];

/// A backend with a native fused instance norm + activation, forward and backward. Every
/// tensor is f32; `x`, `y` and `dy` are `[batch, channels, spatial...]`, `gamma` and `beta`
/// `[channels]`.
pub trait NormActKernels: Backend {
    /// `act(gamma * xhat + beta)` and the statistics.
    fn norm_act_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        activation: Activation,
    ) -> Forward<Self>;

    /// The gradients of the inputs from the output's gradient `dy`.
    fn norm_act_backward(saved: Saved<Self>, dy: FloatTensor<Self>) -> Gradients<Self>;
}

/// What the backward pass reads: the forward pass's inputs (less `beta`), statistics and
/// output.
#[derive(Debug, Clone)]
pub struct Saved<B: Backend> {
    pub x: FloatTensor<B>,
    pub gamma: FloatTensor<B>,
    pub statistics: Statistics<B>,
    pub y: FloatTensor<B>,
    pub activation: Activation,
}

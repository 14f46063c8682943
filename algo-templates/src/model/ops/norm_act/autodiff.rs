//! Routing a call to a backend's kernels: plainly (inference), or under autodiff with the
//! handwritten backward step.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, DispatchKindConversion, DispatchTensor};
use burn::tensor::Tensor;

use super::Inputs;
use super::kernels::{NormActKernels, Saved};

/// The fused forward pass on backend `B` when all three tensors live there without autodiff.
pub(super) fn plain<B: NormActKernels, const D: usize>(inputs: &Inputs<D>) -> Option<Tensor<D>>
where
    DispatchTensor: DispatchKindConversion<B>,
{
    let x = inputs.x.clone().try_into_primitive::<B>().ok()?;
    let gamma = inputs.gamma.clone().try_into_primitive::<B>().ok()?;
    let beta = inputs.beta.clone().try_into_primitive::<B>().ok()?;
    let (y, _) = B::norm_act_forward(x, gamma, beta, inputs.eps, inputs.activation);
    Some(Tensor::from_primitive::<B>(y))
}

/// The fused operation on `Autodiff<B, C>` when all three tensors live there, recording
/// [`NormActBackward`] when any of them is tracked.
pub(super) fn tracked<B, C, const D: usize>(inputs: &Inputs<D>) -> Option<Tensor<D>>
where
    B: NormActKernels,
    C: CheckpointStrategy,
    DispatchTensor: DispatchKindConversion<Autodiff<B, C>>,
{
    let x = inputs
        .x
        .clone()
        .try_into_primitive::<Autodiff<B, C>>()
        .ok()?;
    let gamma = inputs
        .gamma
        .clone()
        .try_into_primitive::<Autodiff<B, C>>()
        .ok()?;
    let beta = inputs
        .beta
        .clone()
        .try_into_primitive::<Autodiff<B, C>>()
        .ok()?;
    let (eps, activation) = (inputs.eps, inputs.activation);
    let prep = NormActBackward
        .prepare::<C>([x.node(), gamma.node(), beta.node()])
        // The state is saved, never recomputed: it is mostly tensors that live anyway.
        .compute_bound()
        .stateful();
    let (x, gamma, beta) = (
        x.into_primitive(),
        gamma.into_primitive(),
        beta.into_primitive(),
    );
    let output = match prep {
        OpsKind::Tracked(prep) => {
            let (y, statistics) =
                B::norm_act_forward(x.clone(), gamma.clone(), beta, eps, activation);
            let saved = Saved {
                x,
                gamma,
                statistics,
                y: y.clone(),
                activation,
            };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(B::norm_act_forward(x, gamma, beta, eps, activation).0)
        }
    };
    Some(Tensor::from_primitive::<Autodiff<B, C>>(output))
}

/// The backward step of the fused operation: parents x, gamma, beta.
#[derive(Debug)]
struct NormActBackward;

impl<B: NormActKernels> Backward<B, 3> for NormActBackward {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let [dx, dgamma, dbeta] = B::norm_act_backward(ops.state, dy);
        for (node, grad) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

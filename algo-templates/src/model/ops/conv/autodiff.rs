//! The convolution on `Autodiff<Flex>` with the handwritten backward step.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, DispatchKindConversion, DispatchTensor, Flex};
use burn::tensor::Tensor;

use super::flex;
use super::{Inputs, Kind, Precision};

/// What the backward step reads.
#[derive(Debug, Clone)]
struct Saved {
    x: FlexTensor,
    weight: FlexTensor,
    kind: Kind,
    precision: Precision,
}

/// The convolution on plain burn-flex tensors (inference), when all its tensors live there:
/// by the forward kernel, or burn-flex's own transposed convolution (in f32 inside a bf16
/// autocast scope too, as under autodiff).
pub(super) fn plain(inputs: &Inputs) -> Option<Tensor<5>> {
    let x = inputs.x.clone().try_into_primitive::<Flex>().ok()?;
    let weight = inputs.weight.clone().try_into_primitive::<Flex>().ok()?;
    let bias = match &inputs.bias {
        Some(b) => Some(b.clone().try_into_primitive::<Flex>().ok()?),
        None => None,
    };
    let (y, _) = forward([x, weight], bias, inputs.kind.clone(), inputs.precision);
    Some(Tensor::from_primitive::<Flex>(y))
}

/// The convolution on `Autodiff<Flex, C>` when all its tensors live there, recording
/// [`ConvBackward`] when any of them is tracked.
pub(super) fn tracked<C: CheckpointStrategy>(inputs: &Inputs) -> Option<Tensor<5>>
where
    DispatchTensor: DispatchKindConversion<Autodiff<Flex, C>>,
{
    let x = inputs
        .x
        .clone()
        .try_into_primitive::<Autodiff<Flex, C>>()
        .ok()?;
    let weight = inputs
        .weight
        .clone()
        .try_into_primitive::<Autodiff<Flex, C>>()
        .ok()?;
    let (kind, precision) = (inputs.kind.clone(), inputs.precision);
    let output = match &inputs.bias {
        Some(bias) => {
            let bias = bias
                .clone()
                .try_into_primitive::<Autodiff<Flex, C>>()
                .ok()?;
            let prep = ConvBackward::<3>
                .prepare::<C>([x.node(), weight.node(), bias.node()])
                .compute_bound()
                .stateful();
            let operands = [x.into_primitive(), weight.into_primitive()];
            record(prep, operands, Some(bias.into_primitive()), kind, precision)
        }
        None => {
            let prep = ConvBackward::<2>
                .prepare::<C>([x.node(), weight.node()])
                .compute_bound()
                .stateful();
            record(
                prep,
                [x.into_primitive(), weight.into_primitive()],
                None,
                kind,
                precision,
            )
        }
    };
    Some(Tensor::from_primitive::<Autodiff<Flex, C>>(output))
}

/// The forward pass, with what the backward step needs when it is tracked.
fn record<C: CheckpointStrategy, const N: usize>(
    prep: OpsKind<ConvBackward<N>, Flex, Saved, C, N>,
    operands: [FlexTensor; 2],
    bias: Option<FlexTensor>,
    kind: Kind,
    precision: Precision,
) -> FloatTensor<Autodiff<Flex, C>> {
    match prep {
        OpsKind::Tracked(prep) => {
            let (y, saved) = forward(operands, bias, kind, precision);
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(operands, bias, kind, precision).0),
    }
}

/// The forward convolution, and what its backward step needs.
fn forward(
    [x, weight]: [FlexTensor; 2],
    bias: Option<FlexTensor>,
    kind: Kind,
    precision: Precision,
) -> (FlexTensor, Saved) {
    let y = match &kind {
        Kind::Conv(o) => flex::forward(&x, &weight, bias.as_ref(), o, precision),
        Kind::Transposed(o) => Flex::conv_transpose3d(x.clone(), weight.clone(), bias, o.clone()),
    };
    let saved = Saved {
        x,
        weight,
        kind,
        precision,
    };
    (y, saved)
}

/// The backward step of either convolution: parents x, weight and, when `N` is 3, bias.
#[derive(Debug)]
struct ConvBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for ConvBackward<N> {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let Saved {
            x,
            weight,
            kind,
            precision: p,
        } = ops.state;
        let parents = ops.parents;
        if let Some(Some(node)) = parents.get(2) {
            grads.register::<Flex>(node.id, flex::bias_grad(&dy));
        }
        if let Some(node) = &parents[1] {
            let grad = match &kind {
                Kind::Conv(o) => flex::weight_grad(&x, &dy, &weight, o, p),
                Kind::Transposed(o) => flex::transposed_weight_grad(&x, &dy, &weight, o, p),
            };
            grads.register::<Flex>(node.id, grad);
        }
        if let Some(node) = &parents[0] {
            let grad = match kind {
                Kind::Conv(o) => flex::input_grad(x, weight, dy, o, p),
                Kind::Transposed(o) => flex::transposed_input_grad(weight, dy, &o, p),
            };
            grads.register::<Flex>(node.id, grad);
        }
    }
}

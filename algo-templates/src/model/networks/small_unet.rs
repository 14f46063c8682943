//! The peer's small 3D U-Net (`../shared/peer/peer_models.py`): the network the training and
//! inference benchmarks time against PyTorch, layer for layer and name for name.

use burn::module::Module;
use burn::nn::InstanceNorm;
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::tensor::{Device, Tensor};

use super::layers::{conv_transpose3d, conv3d, instance_norm};
use crate::ops::{Activation, apply_conv_transpose3d, apply_conv3d, instance_norm_act};

/// Conv (bias) + InstanceNorm + LeakyReLU(0.01), twice; the first conv may stride.
#[derive(Module, Debug)]
pub struct Block {
    c1: Conv3d,
    n1: InstanceNorm,
    c2: Conv3d,
    n2: InstanceNorm,
}

impl Block {
    fn new(input: usize, output: usize, stride: usize, device: &Device) -> Self {
        Self {
            c1: conv3d([input, output], [3; 3], [stride; 3], [1; 3], true, device),
            n1: instance_norm(output, device),
            c2: conv3d([output, output], [3; 3], [1; 3], [1; 3], true, device),
            n2: instance_norm(output, device),
        }
    }

    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let act = Activation::LeakyRelu(0.01);
        let x = instance_norm_act(&self.n1, apply_conv3d(&self.c1, x), act);
        instance_norm_act(&self.n2, apply_conv3d(&self.c2, x), act)
    }
}

/// Three levels at 16/32/64 channels, transposed-conv upsampling, 1x1x1 head.
#[derive(Module, Debug)]
pub struct SmallUNet {
    e1: Block,
    e2: Block,
    e3: Block,
    u2: ConvTranspose3d,
    d2: Block,
    u1: ConvTranspose3d,
    d1: Block,
    head: Conv3d,
}

impl crate::weights::PytorchWeights for SmallUNet {
    fn is_output_head(&self, name: &str) -> bool {
        name.starts_with("head.")
    }
}

impl SmallUNet {
    /// The peer's network: `SmallUNet(in_ch, classes)`.
    pub fn new(in_channels: usize, classes: usize, device: &Device) -> Self {
        let up = |i, o| conv_transpose3d([i, o], [2; 3], [2; 3], [0; 3], [0; 3], true, device);
        Self {
            e1: Block::new(in_channels, 16, 1, device),
            e2: Block::new(16, 32, 2, device),
            e3: Block::new(32, 64, 2, device),
            u2: up(64, 32),
            d2: Block::new(64, 32, 1, device),
            u1: up(32, 16),
            d1: Block::new(32, 16, 1, device),
            head: conv3d([16, classes], [1; 3], [1; 3], [0; 3], true, device),
        }
    }

    /// Class logits at the input's resolution (sizes must be multiples of 4).
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let s1 = self.e1.forward(x);
        let s2 = self.e2.forward(s1.clone());
        let b = self.e3.forward(s2.clone());
        let y = self.d2.forward(Tensor::cat(
            vec![apply_conv_transpose3d(&self.u2, b), s2],
            1,
        ));
        apply_conv3d(
            &self.head,
            self.d1.forward(Tensor::cat(
                vec![apply_conv_transpose3d(&self.u1, y), s1],
                1,
            )),
        )
    }
}

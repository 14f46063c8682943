//! Each network's inference graph (the final output, without the deep-supervision heads),
//! layer for layer as its `forward` runs it.

use super::ExportError;
use super::onnx_graph::OnnxGraph;
use crate::networks::Network;
use crate::networks::dynunet::{BasicBlock, DynUNet, NEGATIVE_SLOPE};
use crate::networks::segresnet_ds::{SegResBlock, SegResNetDs};
use crate::ops::Activation;

/// Adds `network`'s layers reading `x`; returns the name of its logits.
pub fn emit(g: &mut OnnxGraph, network: &Network, x: String) -> Result<String, ExportError> {
    match network {
        Network::Dynunet(net) => dynunet(g, net, x),
        Network::SegresnetDs(net) => segresnet_ds(g, net, x),
    }
}

fn dynunet(g: &mut OnnxGraph, net: &DynUNet, x: String) -> Result<String, ExportError> {
    let mut skips = vec![basic_block(g, "input_block", &net.input_block, x)?];
    for (i, block) in net.downsamples.iter().enumerate() {
        let input = skips.last().expect("input block").clone();
        skips.push(basic_block(g, &format!("downsamples.{i}"), block, input)?);
    }
    let input = skips.last().expect("input block").clone();
    let mut x = basic_block(g, "bottleneck", &net.bottleneck, input)?;
    for (j, up) in net.upsamples.iter().enumerate() {
        let name = format!("upsamples.{j}");
        let skip = skips.pop().expect("one skip per decoder level");
        let x_up =
            g.conv_transpose(&format!("{name}.transp_conv.conv"), &up.transp_conv.conv, x)?;
        let joined = g.concat_channels(&format!("{name}.concat"), x_up, skip);
        x = basic_block(g, &format!("{name}.conv_block"), &up.conv_block, joined)?;
    }
    g.conv("output_block.conv.conv", &net.output_block.conv.conv, x)
}

fn basic_block(
    g: &mut OnnxGraph,
    name: &str,
    block: &BasicBlock,
    x: String,
) -> Result<String, ExportError> {
    let act = Activation::LeakyRelu(NEGATIVE_SLOPE);
    let x = g.conv(&format!("{name}.conv1.conv"), &block.conv1.conv, x)?;
    let x = g.norm_act(&format!("{name}.norm1"), &block.norm1, x, act)?;
    let x = g.conv(&format!("{name}.conv2.conv"), &block.conv2.conv, x)?;
    g.norm_act(&format!("{name}.norm2"), &block.norm2, x, act)
}

fn segresnet_ds(g: &mut OnnxGraph, net: &SegResNetDs, x: String) -> Result<String, ExportError> {
    let mut x = g.conv("encoder.conv_init", &net.encoder.conv_init, x)?;
    let mut skips = Vec::with_capacity(net.encoder.layers.len());
    for (l, level) in net.encoder.layers.iter().enumerate() {
        let name = format!("encoder.layers.{l}");
        x = res_blocks(g, &name, &level.blocks, x)?;
        skips.push(x.clone());
        if let Some(down) = &level.downsample {
            x = g.conv(&format!("{name}.downsample"), down, x)?;
        }
    }
    let mut x = skips.pop().expect("at least two levels");
    let mut logits = None;
    for (i, level) in net.up_layers.iter().enumerate() {
        let name = format!("up_layers.{i}");
        let skip = skips.pop().expect("one skip per decoder level");
        let up = g.conv_transpose(
            &format!("{name}.upsample.deconv"),
            &level.upsample.deconv,
            x,
        )?;
        let joined = g.add(&format!("{name}.skip"), up, skip);
        x = res_blocks(g, &name, &level.blocks, joined)?;
        // The finest level's head is the network's output.
        if i + 1 == net.up_layers.len()
            && let Some(head) = &level.head
        {
            logits = Some(g.conv(&format!("{name}.head"), head, x.clone())?);
        }
    }
    logits.ok_or_else(|| ExportError::Unsupported("segresnet_ds without an output head".into()))
}

fn res_blocks(
    g: &mut OnnxGraph,
    level: &str,
    blocks: &[SegResBlock],
    mut x: String,
) -> Result<String, ExportError> {
    for (b, block) in blocks.iter().enumerate() {
        let name = format!("{level}.blocks.{b}");
        let y = g.norm_act(
            &format!("{name}.norm1"),
            &block.norm1,
            x.clone(),
            Activation::Relu,
        )?;
        let y = g.conv(&format!("{name}.conv1"), &block.conv1, y)?;
        let y = g.norm_act(&format!("{name}.norm2"), &block.norm2, y, Activation::Relu)?;
        let y = g.conv(&format!("{name}.conv2"), &block.conv2, y)?;
        x = g.add(&format!("{name}.residual"), x, y);
    }
    Ok(x)
}

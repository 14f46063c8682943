//! An ONNX graph built layer by layer from a network's burn modules: each call adds the
//! node of one layer, its weights as initializers under their PyTorch names, and returns
//! the name of the value it produces.
//!
//! autoseg's 2D networks are 3D ones with a unit z axis; in a 2D graph every kernel, stride
//! and padding drops that axis, so the graph takes `[n, c, x, y]` slices as MONAI's 2D
//! networks do.

use burn::module::Param;
use burn::nn::conv::{Conv3d, ConvTranspose3d};
use burn::nn::{InstanceNorm, PaddingConfig3d};
use burn::tensor::Tensor;

use super::ExportError;
use super::onnx_proto::{
    ATTRIBUTE_FLOAT, ATTRIBUTE_INT, ATTRIBUTE_INTS, AttributeProto, FLOAT, NodeProto, TensorProto,
};
use crate::ops::Activation;

/// The graph being built: its nodes and weights, in the order they were added.
pub struct OnnxGraph {
    /// Spatial axes of the graph's tensors: 3, or 2 for a planar network.
    spatial_dims: usize,
    /// The nodes, in execution order.
    pub nodes: Vec<NodeProto>,
    /// The weights.
    pub initializers: Vec<TensorProto>,
    /// Bytes of weights so far (ONNX keeps a model in one protobuf of under 2 GiB).
    pub weight_bytes: usize,
}

impl OnnxGraph {
    /// An empty graph for tensors with `spatial_dims` spatial axes.
    pub fn new(spatial_dims: usize) -> Self {
        Self {
            spatial_dims,
            nodes: Vec::new(),
            initializers: Vec::new(),
            weight_bytes: 0,
        }
    }

    /// A convolution (`name` is its PyTorch prefix, as `input_block.conv1.conv`).
    pub fn conv(&mut self, name: &str, conv: &Conv3d, x: String) -> Result<String, ExportError> {
        let padding = match conv.padding {
            PaddingConfig3d::Explicit(a, b, c) => [a, b, c],
            PaddingConfig3d::Valid => [0; 3],
            PaddingConfig3d::Same => {
                return Err(ExportError::Unsupported(format!(
                    "{name}: a convolution with implicit \"same\" padding"
                )));
            }
        };
        let inputs = self.conv_inputs(name, &conv.weight, &conv.bias, x)?;
        let window = [conv.kernel_size, conv.stride, conv.dilation, padding];
        let attributes = self.window_attributes(window, conv.groups);
        Ok(self.node("Conv", name, inputs, attributes))
    }

    /// A transposed convolution with PyTorch's `padding` and `output_padding`.
    pub fn conv_transpose(
        &mut self,
        name: &str,
        conv: &ConvTranspose3d,
        x: String,
    ) -> Result<String, ExportError> {
        let inputs = self.conv_inputs(name, &conv.weight, &conv.bias, x)?;
        let window = [conv.kernel_size, conv.stride, conv.dilation, conv.padding];
        let mut attributes = self.window_attributes(window, conv.groups);
        attributes.push(self.ints("output_padding", conv.padding_out));
        Ok(self.node("ConvTranspose", name, inputs, attributes))
    }

    /// Instance normalisation, then the activation.
    pub fn norm_act(
        &mut self,
        name: &str,
        norm: &InstanceNorm,
        x: String,
        activation: Activation,
    ) -> Result<String, ExportError> {
        let channels = norm.num_channels;
        let scale = match &norm.gamma {
            Some(gamma) => self.weight(&format!("{name}.weight"), gamma)?,
            None => self.constant(&format!("{name}.weight"), vec![1.0; channels]),
        };
        let shift = match &norm.beta {
            Some(beta) => self.weight(&format!("{name}.bias"), beta)?,
            None => self.constant(&format!("{name}.bias"), vec![0.0; channels]),
        };
        let epsilon = float("epsilon", norm.epsilon as f32);
        let y = self.node(
            "InstanceNormalization",
            name,
            vec![x, scale, shift],
            vec![epsilon],
        );
        Ok(match activation {
            Activation::Identity => y,
            Activation::Relu => self.node("Relu", &format!("{name}.relu"), vec![y], vec![]),
            Activation::LeakyRelu(slope) => self.node(
                "LeakyRelu",
                &format!("{name}.leaky_relu"),
                vec![y],
                vec![float("alpha", slope as f32)],
            ),
        })
    }

    /// The sum of two values of one shape.
    pub fn add(&mut self, name: &str, a: String, b: String) -> String {
        self.node("Add", name, vec![a, b], vec![])
    }

    /// Two values joined along the channel axis.
    pub fn concat_channels(&mut self, name: &str, a: String, b: String) -> String {
        self.node("Concat", name, vec![a, b], vec![int("axis", 1)])
    }

    /// Adds a node with one output, named after the node.
    fn node(
        &mut self,
        op_type: &str,
        name: &str,
        input: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) -> String {
        let output = format!("{name}:{op_type}");
        self.nodes.push(NodeProto {
            input,
            output: vec![output.clone()],
            name: Some(output.clone()),
            op_type: Some(op_type.to_string()),
            attribute,
        });
        output
    }

    /// A convolution's inputs: `x`, its kernel and its bias if it has one.
    fn conv_inputs(
        &mut self,
        name: &str,
        kernel: &Param<Tensor<5>>,
        bias: &Option<Param<Tensor<1>>>,
        x: String,
    ) -> Result<Vec<String>, ExportError> {
        let mut inputs = vec![x, self.kernel(name, kernel)?];
        if let Some(bias) = bias {
            inputs.push(self.weight(&format!("{name}.bias"), bias)?);
        }
        Ok(inputs)
    }

    /// The attributes of a (transposed) convolution's window: kernel, stride, dilation and
    /// padding per axis, and its groups.
    fn window_attributes(&self, window: [[usize; 3]; 4], groups: usize) -> Vec<AttributeProto> {
        let [kernel, stride, dilation, padding] = window;
        vec![
            self.ints("kernel_shape", kernel),
            self.ints("strides", stride),
            self.ints("dilations", dilation),
            self.pads(padding),
            int("group", groups),
        ]
    }

    /// A convolution kernel, without its unit z axis in a 2D graph.
    fn kernel(&mut self, name: &str, weight: &Param<Tensor<5>>) -> Result<String, ExportError> {
        let dims = weight.val().dims();
        if self.spatial_dims == 2 && dims[4] != 1 {
            return Err(ExportError::Unsupported(format!(
                "{name}: a 2D network with a kernel of {} along z",
                dims[4]
            )));
        }
        let shape = &dims[..2 + self.spatial_dims];
        let values = values(name, weight.val())?;
        Ok(self.initializer(&format!("{name}.weight"), shape, values))
    }

    /// A parameter as it is.
    fn weight<const D: usize>(
        &mut self,
        name: &str,
        param: &Param<Tensor<D>>,
    ) -> Result<String, ExportError> {
        let dims = param.val().dims();
        let values = values(name, param.val())?;
        Ok(self.initializer(name, &dims, values))
    }

    /// A constant vector.
    fn constant(&mut self, name: &str, values: Vec<f32>) -> String {
        self.initializer(name, &[values.len()], values)
    }

    fn initializer(&mut self, name: &str, dims: &[usize], values: Vec<f32>) -> String {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.weight_bytes += raw.len();
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(FLOAT),
            name: Some(name.to_string()),
            raw_data: Some(raw),
        });
        name.to_string()
    }

    /// An integer list over the graph's spatial axes.
    fn ints(&self, name: &str, values: [usize; 3]) -> AttributeProto {
        ints(name, &values[..self.spatial_dims])
    }

    /// ONNX's pads: every axis's start, then every axis's end (symmetric here).
    fn pads(&self, padding: [usize; 3]) -> AttributeProto {
        let side = &padding[..self.spatial_dims];
        ints("pads", &[side, side].concat())
    }
}

/// A tensor's values as f32.
fn values<const D: usize>(name: &str, tensor: Tensor<D>) -> Result<Vec<f32>, ExportError> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| {
            ExportError::Unsupported(format!("{name}: weights not readable as f32: {e:?}"))
        })
}

fn int(name: &str, value: usize) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        i: Some(value as i64),
        r#type: Some(ATTRIBUTE_INT),
        ..AttributeProto::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        f: Some(value),
        r#type: Some(ATTRIBUTE_FLOAT),
        ..AttributeProto::default()
    }
}

fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        ints: values.iter().map(|&v| v as i64).collect(),
        r#type: Some(ATTRIBUTE_INTS),
        ..AttributeProto::default()
    }
}

//! `autoseg export --format onnx`: a bundle's network as an ONNX graph (opset 17, weights
//! inside, dynamic batch and spatial axes) and `inference.json` beside it, which says what
//! the graph expects and how a deployment slides it over an image. The graph's output is
//! logits; a softmax over axis 1 gives the class probabilities autoseg averages.

use std::path::Path;

use autoseg_datasets::transforms::preprocess::Normalization;
use prost::Message;
use serde::Serialize;

use super::onnx_graph::OnnxGraph;
use super::onnx_networks::emit;
use super::onnx_proto::{
    Dimension, DimensionValue, FLOAT, GraphProto, ModelProto, OperatorSetIdProto,
    StringStringEntryProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};
use super::{ExportError, Exported, write_file};
use crate::ComputeDevice;
use crate::bundle::runtime::{BundlePredictor, InferenceSettings};
use crate::inference::Blend;
use crate::networks::{Network, NetworkConfig, Triple};

/// The operator set the graph uses (InstanceNormalization, Conv, ConvTranspose, LeakyRelu
/// are unchanged since well before it; 17 is what ONNX Runtime and TensorRT all take).
pub const OPSET: i64 = 17;
/// The IR version that goes with opset 17.
const IR_VERSION: i64 = 8;
/// Protobuf's limit on one message: larger models need external data, which we do not write.
const MAX_MODEL_BYTES: usize = (2 << 30) - (1 << 20);
/// The graph's file name in the export folder.
pub const MODEL_FILE: &str = "model.onnx";
/// The inference settings' file name in the export folder.
pub const SETTINGS_FILE: &str = "inference.json";
/// The graph's input and output names.
pub const INPUT: &str = "image";
/// The graph's output: class logits.
pub const OUTPUT: &str = "logits";

/// What a deployment needs around the graph (`inference.json`).
#[derive(Debug, Clone, Serialize)]
pub struct OnnxInference {
    /// The graph's file, beside this one.
    pub model: String,
    /// `[batch, channels, x, y, z]`, or `[batch, channels, x, y]` for a 2D network, which
    /// then takes one z-slice at a time.
    pub input_axes: Vec<String>,
    /// Image channels (modalities), in the datalist's order.
    pub channels: usize,
    /// Each spatial size of the input must be a multiple of these (x, y, z).
    pub input_multiple_of: Triple,
    /// Class logits; softmax over axis 1 gives probabilities.
    pub output: String,
    /// Images are reoriented to this before anything else.
    pub orientation: String,
    /// Images are cropped to the box of voxels non-zero in any channel first; outside it
    /// the background is certain.
    pub crop_to_nonzero: bool,
    /// Voxel size (mm) the crop is resampled to, `null` to keep each image's own.
    pub spacing: Option<[f64; 3]>,
    /// How images are resampled to `spacing`.
    pub image_interpolation: String,
    /// How probabilities are resampled back to the crop on the image's grid.
    pub probability_interpolation: String,
    /// Intensity normalisation, as the bundle's preprocessing names it.
    pub normalization: Normalization,
    /// The sliding window's size (x, y, z voxels).
    pub window: [usize; 3],
    /// Fraction of a window its neighbour shares.
    pub overlap: f64,
    /// How overlapping windows are weighted.
    pub blend: Blend,
    /// Axes mirrored at test time, probabilities averaged (none: no mirroring).
    pub mirror_axes: Vec<usize>,
    /// The dataset's label id of each output channel (background first).
    pub label_ids: Vec<u16>,
}

impl OnnxInference {
    fn new(settings: &InferenceSettings, network: &Network) -> Self {
        let dims = settings.network.spatial_dims();
        let mut input_axes = vec![
            "batch".to_string(),
            "channels".into(),
            "x".into(),
            "y".into(),
        ];
        if dims == 3 {
            input_axes.push("z".into());
        }
        Self {
            model: MODEL_FILE.into(),
            input_axes,
            channels: settings.network.in_channels(),
            input_multiple_of: network.shape_factor(),
            output: format!("{OUTPUT}: class logits, softmax over axis 1"),
            orientation: "RAS".into(),
            crop_to_nonzero: true,
            spacing: settings.preprocessing.target_spacing,
            image_interpolation: "cubic".into(),
            probability_interpolation: "linear".into(),
            normalization: settings.preprocessing.normalization.clone(),
            window: settings.inference.roi.unwrap_or(settings.patch_size),
            overlap: settings.inference.overlap,
            blend: settings.inference.blend,
            mirror_axes: settings.inference.mirror_axes.clone(),
            label_ids: settings.preprocessing.labels.clone(),
        }
    }
}

/// Exports the trained `bundle` into `out_dir` (`model.onnx` and `inference.json`).
pub fn export_bundle(bundle: &Path, out_dir: &Path) -> Result<Exported, ExportError> {
    let predictor = BundlePredictor::load(bundle, ComputeDevice::Flex)?;
    let settings = &predictor.settings;
    super::refuse_regions(settings)?;
    let (bytes, weight_bytes) = model_bytes(predictor.network(), &settings.network)?;
    let inference = OnnxInference::new(settings, predictor.network());
    let json = serde_json::to_string_pretty(&inference).expect("settings serialise");
    Ok(Exported {
        files: vec![
            write_file(out_dir, MODEL_FILE, &bytes)?,
            write_file(out_dir, SETTINGS_FILE, json.as_bytes())?,
        ],
        weight_bytes,
    })
}

/// The network as a serialised ONNX model, and the bytes of weights in it.
pub fn model_bytes(
    network: &Network,
    config: &NetworkConfig,
) -> Result<(Vec<u8>, usize), ExportError> {
    let spatial_dims = config.spatial_dims();
    let (channels, classes) = (config.in_channels(), config.out_channels());
    let mut graph = OnnxGraph::new(spatial_dims);
    let logits = emit(&mut graph, network, INPUT.to_string())?;
    if graph.weight_bytes > MAX_MODEL_BYTES {
        return Err(ExportError::Unsupported(format!(
            "{} MB of weights: one ONNX file holds under 2 GB",
            graph.weight_bytes >> 20
        )));
    }
    let weight_bytes = graph.weight_bytes;
    let spatial: Vec<&str> = ["x", "y", "z"][..spatial_dims].to_vec();
    let mut nodes = graph.nodes;
    // The head's output is the graph's: nothing else reads it.
    for node in &mut nodes {
        for name in node.output.iter_mut().chain(node.input.iter_mut()) {
            if *name == logits {
                *name = OUTPUT.into();
            }
        }
    }
    let model = ModelProto {
        ir_version: Some(IR_VERSION),
        producer_name: Some("autoseg".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!(
            "A segmentation network exported by autoseg: {INPUT} in, class {OUTPUT} out."
        )),
        graph: Some(GraphProto {
            node: nodes,
            name: Some("autoseg".into()),
            initializer: graph.initializers,
            input: vec![value_info(INPUT, channels, &spatial)],
            output: vec![value_info(OUTPUT, classes, &spatial)],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        metadata_props: vec![StringStringEntryProto {
            key: Some("spatial_dims".into()),
            value: Some(spatial_dims.to_string()),
        }],
    };
    Ok((model.encode_to_vec(), weight_bytes))
}

/// A float tensor with a dynamic batch, fixed channels and dynamic spatial axes.
fn value_info(name: &str, channels: usize, spatial: &[&str]) -> ValueInfoProto {
    let param = |p: &str| Dimension {
        value: Some(DimensionValue::DimParam(p.to_string())),
    };
    let fixed = Dimension {
        value: Some(DimensionValue::DimValue(channels as i64)),
    };
    let mut dim = vec![param("batch"), fixed];
    dim.extend(spatial.iter().map(|s| param(s)));
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: Some(FLOAT),
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

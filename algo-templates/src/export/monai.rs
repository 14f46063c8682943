//! `autoseg export --format monai`: a trained bundle as a MONAI bundle folder that
//! `python -m monai.bundle run` runs with MONAI's own classes: `configs/inference.json` (the
//! network as MONAI's `DynUNet` or `SegResNetDS`, and transforms that do what autoseg's
//! preprocessing, window and inversion do), `configs/metadata.json`, `models/model.pt` (the
//! weights as a PyTorch `state_dict`, loadable with `weights_only=True`) and `docs/README.md`.
//! The run needs no ignite: it loops over the images itself.

use std::path::Path;

use autoseg_datasets::transforms::preprocess::Normalization;
use serde_json::{Value, json};

use super::{ExportError, Exported, write_file};
use crate::ComputeDevice;
use crate::bundle::runtime::{BundlePredictor, InferenceSettings};
use crate::inference::Blend;
use crate::networks::{DynUNetConfig, NetworkConfig};
use crate::weights;

/// The weights, relative to the bundle folder.
pub const MODEL_FILE: &str = "models/model.pt";
/// The inference configuration.
pub const INFERENCE_FILE: &str = "configs/inference.json";
/// The bundle's metadata.
pub const METADATA_FILE: &str = "configs/metadata.json";
/// What the bundle is and how to run it.
pub const README_FILE: &str = "docs/README.md";
/// The versions the exported configuration was checked with (`tests/export_cli.rs`, the
/// peer's venv).
const MONAI_VERSION: &str = "1.6.1";
const PYTORCH_VERSION: &str = "2.15.0";
const NUMPY_VERSION: &str = "2.4.6";
const NIBABEL_VERSION: &str = "5.4.2";
/// nnU-Net's Gaussian: sigma an eighth of the window, as autoseg blends.
const SIGMA_SCALE: f64 = 0.125;

/// Exports the trained `bundle` into `out_dir` as a MONAI bundle.
pub fn export_bundle(bundle: &Path, out_dir: &Path) -> Result<Exported, ExportError> {
    let predictor = BundlePredictor::load(bundle, ComputeDevice::Flex)?;
    let settings = &predictor.settings;
    super::refuse_regions(settings)?;
    let aliases = match &settings.network {
        NetworkConfig::Dynunet(c) => dynunet_aliases(c),
        NetworkConfig::SegresnetDs(_) => Vec::new(),
    };
    let model = out_dir.join(MODEL_FILE);
    weights::save_pytorch(predictor.network(), &model, &aliases).map_err(|e| {
        ExportError::Write {
            path: model.clone(),
            reason: e.to_string(),
        }
    })?;
    let weight_bytes = std::fs::metadata(&model).map_or(0, |m| m.len() as usize);
    let config = inference_config(settings)?;
    let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("json values serialise");
    let files = vec![
        model,
        write_file(out_dir, INFERENCE_FILE, pretty(&config).as_bytes())?,
        write_file(
            out_dir,
            METADATA_FILE,
            pretty(&metadata(settings)).as_bytes(),
        )?,
        write_file(out_dir, README_FILE, readme(bundle, settings).as_bytes())?,
    ];
    Ok(Exported {
        files,
        weight_bytes,
    })
}

/// MONAI's DynUNet holds its blocks a second time in a chain of skip layers
/// (`skip_layers.next_layer...`), and its strict `load_state_dict` asks for those names too:
/// `(alias, original)` prefixes, as MONAI's `create_skips` builds them.
pub fn dynunet_aliases(config: &DynUNetConfig) -> Vec<(String, String)> {
    let stages = config.strides.len();
    let heads = config.deep_supervision_heads;
    let depth = |d: usize| format!("skip_layers{}", ".next_layer".repeat(d));
    let mut aliases = Vec::new();
    for d in 0..stages - 1 {
        let down = match d {
            0 => "input_block".to_string(),
            _ => format!("downsamples.{}", d - 1),
        };
        aliases.push((format!("{}.downsample", depth(d)), down));
        aliases.push((
            format!("{}.upsample", depth(d)),
            format!("upsamples.{}", stages - 2 - d),
        ));
        if (1..=heads).contains(&d) {
            aliases.push((
                format!("{}.super_head", depth(d)),
                format!("deep_supervision_heads.{}", d - 1),
            ));
        }
    }
    aliases.push((depth(stages - 1), "bottleneck".into()));
    aliases
}

/// `configs/inference.json`.
fn inference_config(settings: &InferenceSettings) -> Result<Value, ExportError> {
    let channels = settings.network.in_channels();
    // One channel: every NIfTI file of `dataset_dir`; more: a datalist's `testing` cases.
    let datalist = if channels == 1 {
        "$[{'image': f} for f in sorted(glob.glob(os.path.join(@dataset_dir, '*.nii*')))]"
    } else {
        "$monai.data.load_decathlon_datalist(@datalist_file, True, 'testing', @dataset_dir)"
    };
    Ok(json!({
        "imports": ["$import glob", "$import os", "$import collections"],
        "bundle_root": ".",
        "dataset_dir": "images",
        "datalist_file": "dataset.json",
        "output_dir": "$os.path.join(@bundle_root, 'eval')",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "network_def": network_def(&settings.network)?,
        "network": "$@network_def.to(@device)",
        "datalist": datalist,
        "preprocessing": {"_target_": "Compose", "transforms": preprocessing(settings)},
        "dataset": {"_target_": "Dataset", "data": "@datalist", "transform": "@preprocessing"},
        "inferer": inferer(settings),
        "postprocessing": {"_target_": "Compose", "transforms": postprocessing(settings)},
        "mirror_dims": mirror_dims(settings),
        "probabilities": "$lambda x: sum(torch.softmax(@network(x.flip(d)), 1).flip(d) \
            for d in @mirror_dims) / len(@mirror_dims)",
        "predict": "$torch.no_grad()(lambda d: {**d, 'pred': monai.data.MetaTensor(\
            monai.utils.convert_to_tensor(@inferer(d['image'].unsqueeze(0).to(@device), \
            @probabilities)[0], track_meta=False).cpu(), meta=d['image'].meta, \
            applied_operations=d['image'].applied_operations)})",
        "load_weights": "$@network.load_state_dict(torch.load(os.path.join(@bundle_root, \
            'models', 'model.pt'), map_location=@device, weights_only=True))",
        "run": [
            "$@load_weights",
            "$@network.eval()",
            "$collections.deque((@postprocessing(@predict(d)) for d in @dataset), maxlen=0)"
        ]
    }))
}

/// Test-time mirroring as autoseg does it: every subset of the mirror axes (the empty one
/// included), as tensor dims of what the network sees; each window's softmax is averaged
/// over them. A 2D network's windows are single slices, which mirroring along z leaves alone.
fn mirror_dims(settings: &InferenceSettings) -> Vec<Vec<usize>> {
    let planar = settings.network.spatial_dims() == 2;
    let axes: Vec<usize> = (settings.inference.mirror_axes.iter())
        .filter(|&&a| !(planar && a == 2))
        .map(|&a| a + 2)
        .collect();
    (0..1usize << axes.len())
        .map(|subset| {
            (axes.iter().enumerate())
                .filter(|(i, _)| subset >> i & 1 == 1)
                .map(|(_, &d)| d)
                .collect()
        })
        .collect()
}

/// MONAI's network of the same architecture, names and shapes as autoseg's.
fn network_def(network: &NetworkConfig) -> Result<Value, ExportError> {
    let dims = network.spatial_dims();
    let planar = |t: &[usize; 3]| t[..dims].to_vec();
    Ok(match network {
        NetworkConfig::Dynunet(c) => {
            let filters = c
                .validate()
                .map_err(|e| ExportError::Unsupported(e.to_string()))?;
            let heads = c.deep_supervision_heads;
            json!({
                "_target_": "DynUNet",
                "spatial_dims": dims,
                "in_channels": c.in_channels,
                "out_channels": c.out_channels,
                "kernel_size": c.kernel_sizes.iter().map(planar).collect::<Vec<_>>(),
                "strides": c.strides.iter().map(planar).collect::<Vec<_>>(),
                "upsample_kernel_size": c.strides[1..].iter().map(planar).collect::<Vec<_>>(),
                "filters": filters,
                "norm_name": ["INSTANCE", {"affine": true}],
                "act_name": ["leakyrelu", {"inplace": true, "negative_slope": 0.01}],
                "deep_supervision": heads > 0,
                "deep_supr_num": heads.max(1),
                "res_block": false,
                "trans_bias": false
            })
        }
        NetworkConfig::SegresnetDs(c) => json!({
            "_target_": "SegResNetDS",
            "spatial_dims": dims,
            "init_filters": c.init_filters,
            "in_channels": c.in_channels,
            "out_channels": c.out_channels,
            "act": "relu",
            "norm": "instance",
            "blocks_down": c.blocks_down,
            "blocks_up": c.blocks_up,
            "dsdepth": c.dsdepth,
            "upsample_mode": "deconv",
            "resolution": c.resolution
        }),
    })
}

/// autoseg's preprocessing in MONAI's transforms: reorient to RAS, crop to the box non-zero
/// in any channel, resample when the bundle has a target spacing, normalise.
fn preprocessing(settings: &InferenceSettings) -> Vec<Value> {
    let plan = &settings.preprocessing;
    let mut transforms = vec![
        json!({"_target_": "LoadImaged", "keys": "image", "image_only": true}),
        json!({"_target_": "EnsureChannelFirstd", "keys": "image"}),
        json!({"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"}),
        json!({"_target_": "CropForegroundd", "keys": "image", "source_key": "image",
               "select_fn": "$lambda x: x != 0", "allow_smaller": true}),
    ];
    if let Some(spacing) = plan.target_spacing {
        // Trilinear (torch's grid_sample) where autoseg resamples with a cubic spline: the
        // spline would need scipy, which a MONAI install need not have.
        transforms.push(
            json!({"_target_": "Spacingd", "keys": "image", "pixdim": spacing,
                               "mode": "bilinear", "padding_mode": "border"}),
        );
    }
    let range = |a: f32, b: f32, lo: f32, hi: f32, clip: bool| {
        json!({"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": a, "a_max": b,
               "b_min": lo, "b_max": hi, "clip": clip})
    };
    match plan.normalization {
        Normalization::ZScoreNonzero | Normalization::ZScore => {
            let nonzero = plan.normalization == Normalization::ZScoreNonzero;
            transforms.push(json!({"_target_": "NormalizeIntensityd", "keys": "image",
                                   "nonzero": nonzero, "channel_wise": true}));
        }
        Normalization::Ct {
            lower,
            upper,
            mean,
            std,
        } => {
            let std = std.max(1e-8);
            let scaled = |v: f32| (v - mean) / std;
            transforms.push(range(lower, upper, scaled(lower), scaled(upper), true));
        }
        Normalization::RangeSigmoid { lower, upper } => {
            transforms.push(range(lower, upper, -1.0, 1.0, false));
            transforms.push(json!({"_target_": "Lambdad", "keys": "image",
                                   "func": "$torch.sigmoid"}));
        }
        Normalization::None => {}
    }
    transforms.push(json!({"_target_": "EnsureTyped", "keys": "image", "dtype": "$torch.float32"}));
    transforms
}

/// The sliding window: over volumes for 3D networks, over each z-slice for 2D ones.
fn inferer(settings: &InferenceSettings) -> Value {
    let window = settings.inference.roi.unwrap_or(settings.patch_size);
    let mode = match settings.inference.blend {
        Blend::Gaussian => "gaussian",
        Blend::Constant => "constant",
    };
    let mut inferer = json!({
        "_target_": "SlidingWindowInferer",
        "roi_size": window,
        "sw_batch_size": settings.inference.batch,
        "overlap": settings.inference.overlap,
        "mode": mode,
        "sigma_scale": SIGMA_SCALE,
    });
    if settings.network.spatial_dims() == 2 {
        inferer["_target_"] = json!("SliceInferer");
        inferer["roi_size"] = json!(&window[..2]);
        inferer["spatial_dim"] = json!(2);
    }
    inferer
}

/// The window's probabilities (softmax, mirrored as autoseg mirrors) back on the image's
/// grid, argmax, label ids, saved as `<case>_seg.nii.gz`.
fn postprocessing(settings: &InferenceSettings) -> Vec<Value> {
    let labels = &settings.preprocessing.labels;
    let mut transforms = vec![
        json!({"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing",
               "orig_keys": "image", "nearest_interp": false, "to_tensor": true}),
        json!({"_target_": "AsDiscreted", "keys": "pred", "argmax": true}),
    ];
    if labels.iter().enumerate().any(|(k, &id)| k != id as usize) {
        transforms.push(json!({"_target_": "MapLabelValued", "keys": "pred",
                               "orig_labels": (0..labels.len()).collect::<Vec<_>>(),
                               "target_labels": labels}));
    }
    let dtype = if labels.iter().all(|&l| l <= u8::MAX as u16) {
        "$numpy.uint8"
    } else {
        "$numpy.uint16"
    };
    transforms.push(json!({"_target_": "SaveImaged", "keys": "pred",
                           "output_dir": "@output_dir", "output_postfix": "seg",
                           "separate_folder": false, "resample": false,
                           "output_dtype": dtype}));
    transforms
}

/// `configs/metadata.json`, in MONAI's bundle schema.
fn metadata(settings: &InferenceSettings) -> Value {
    let window = settings.inference.roi.unwrap_or(settings.patch_size);
    let dims = settings.network.spatial_dims();
    let labels = &settings.preprocessing.labels;
    let classes: serde_json::Map<String, Value> = (labels.iter().enumerate())
        .map(|(k, id)| (k.to_string(), json!(format!("label {id}"))))
        .collect();
    json!({
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
        "version": "0.1.0",
        "changelog": {"0.1.0": "exported by autoseg"},
        "monai_version": MONAI_VERSION,
        "pytorch_version": PYTORCH_VERSION,
        "numpy_version": NUMPY_VERSION,
        "required_packages_version": {"nibabel": NIBABEL_VERSION},
        "name": "autoseg segmentation",
        "task": "segmentation",
        "description": "A network trained by autoseg, exported with its inference pipeline.",
        "authors": "autoseg",
        "copyright": "the dataset's owner",
        "network_data_format": {
            "inputs": {"image": {
                "type": "image", "format": "magnitude", "modality": "any",
                "num_channels": settings.network.in_channels(),
                "spatial_shape": &window[..dims], "dtype": "float32",
                "value_range": [], "is_patch_data": true,
                "channel_def": {"0": "image"}
            }},
            "outputs": {"pred": {
                "type": "image", "format": "segmentation",
                "num_channels": labels.len(), "spatial_shape": &window[..dims],
                "dtype": "float32", "value_range": [0, 1], "is_patch_data": true,
                "channel_def": classes
            }}
        }
    })
}

/// `docs/README.md`.
fn readme(bundle: &Path, settings: &InferenceSettings) -> String {
    format!(
        "# {name}\n\nExported by autoseg from `{path}`.\n\n\
         Run it on every NIfTI image of a folder (one channel), or on a datalist's `testing` \
         cases (several channels, `--datalist_file`):\n\n\
         ```\npython -m monai.bundle run --config_file configs/inference.json \\\n  \
         --meta_file configs/metadata.json --bundle_root . --dataset_dir IMAGES \\\n  \
         --output_dir OUT\n```\n\n\
         Label maps are written as `OUT/<case>_seg.nii.gz` on each image's own grid; \
         output channel k is label id {labels:?}[k]. Windows are mirrored along axes \
         {mirror:?} and their softmax averaged, as autoseg does.\n",
        name = autoseg_datasets::Bundle::new(bundle).name(),
        path = bundle.display(),
        labels = settings.preprocessing.labels,
        mirror = settings.inference.mirror_axes,
    )
}

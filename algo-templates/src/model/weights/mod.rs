//! Network weights as safetensors files with PyTorch parameter names.
//!
//! burn names a norm's scale and shift `gamma`/`beta`; PyTorch names them `weight`/`bias`.
//! The adapters of burn-store translate both ways, so a file written here loads into the
//! MONAI/PyTorch network of the same architecture with `load_state_dict`, and a MONAI
//! checkpoint converted to safetensors loads here. Files are written atomically: a crash
//! never leaves a half-written weights file under the final name.

mod init;
mod torch_file;

pub use init::{InitReport, load_matching};

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    BurnToPyTorchAdapter, ModuleAdapter, ModuleContext, ModuleSnapshot, PyTorchToBurnAdapter,
    SafetensorsStore,
};
use burn::tensor::DType;

/// State-dict prefixes that PyTorch modules register twice under another name (MONAI's
/// `DynUNet.skip_layers` holds the same blocks as `input_block`, `downsamples`, ...).
/// Their tensors are aliases, so a file may carry them without them being loaded.
pub const ALIAS_PREFIXES: &[&str] = &["skip_layers."];

/// How convolution kernels are stored in the file.
///
/// autoseg's 2D networks are its 3D ones with a unit z axis (kernels `[.., k, k, 1]`), so
/// they run on the same volumes; PyTorch's 2D networks store kernels `[.., k, k]`. The
/// planar layout drops (on save) and restores (on load) that unit axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightsLayout {
    /// Kernels as they are: a 3D network.
    #[default]
    Volumetric,
    /// Kernels without their unit z axis: a 2D network.
    Planar,
}

impl WeightsLayout {
    /// The layout of a network with `spatial_dims` dimensions (2 or 3).
    pub fn for_dims(spatial_dims: usize) -> Self {
        if spatial_dims == 2 {
            WeightsLayout::Planar
        } else {
            WeightsLayout::Volumetric
        }
    }
}

/// A network whose weights have a PyTorch twin: its parameter names are PyTorch's.
pub trait PytorchWeights: Module {
    /// How its kernels are stored in a PyTorch file.
    fn layout(&self) -> WeightsLayout {
        WeightsLayout::Volumetric
    }

    /// Whether a parameter (by its PyTorch name) belongs to an output head, whose shape
    /// follows the class count: the only layers fine-tuning may start afresh.
    fn is_output_head(&self, _name: &str) -> bool {
        false
    }
}

/// Why weights could not be saved or loaded; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be written or renamed into place.
    #[error("cannot write weights {path}: {reason}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file is missing, unreadable, or not a safetensors file.
    #[error("cannot read weights {path}: {reason}")]
    Read {
        /// The source.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file does not fit the network: tensors missing, left over, or of another shape.
    #[error("weights {path} do not fit the network: {reason}")]
    Mismatch {
        /// The source.
        path: PathBuf,
        /// The parameters concerned.
        reason: String,
    },
}

/// Writes `module`'s parameters to `path` as safetensors with PyTorch names.
pub fn save<M: PytorchWeights>(module: &M, path: &Path) -> Result<(), WeightsError> {
    let layout = module.layout();
    let write_error = |reason: String| WeightsError::Write {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| write_error(e.to_string()))?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    let mut store = SafetensorsStore::from_file(&temporary)
        .with_to_adapter(to_pytorch_names(layout))
        .overwrite(true)
        .skip_enum_variants(true)
        .metadata("format", "pt");
    let saved = module
        .save_into(&mut store)
        .map_err(|e| write_error(e.to_string()))
        .and_then(|()| std::fs::rename(&temporary, path).map_err(|e| write_error(e.to_string())));
    if saved.is_err() {
        // A full disk, say: the half-written file goes, whatever was at `path` stays.
        let _ = std::fs::remove_file(&temporary);
    }
    saved
}

/// Loads PyTorch-named safetensors weights into `module`, requiring every parameter to be
/// present with its shape, and no unknown tensor besides [`ALIAS_PREFIXES`].
pub fn load<M: PytorchWeights>(mut module: M, path: &Path) -> Result<M, WeightsError> {
    let layout = module.layout();
    if !path.is_file() {
        return Err(WeightsError::Read {
            path: path.to_path_buf(),
            reason: "no such file".into(),
        });
    }
    let mismatch = |reason: String| WeightsError::Mismatch {
        path: path.to_path_buf(),
        reason,
    };
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(from_pytorch_names(layout))
        .skip_enum_variants(true)
        .allow_partial(true);
    let result = module
        .load_from(&mut store)
        .map_err(|e| WeightsError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if !result.errors.is_empty() {
        let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        return Err(mismatch(errors.join("; ")));
    }
    if !result.missing.is_empty() {
        let missing: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).collect();
        return Err(mismatch(format!("missing {}", missing.join(", "))));
    }
    let unused: Vec<&str> = result
        .unused
        .iter()
        .map(String::as_str)
        .filter(|name| !ALIAS_PREFIXES.iter().any(|p| name.starts_with(p)))
        .collect();
    if !unused.is_empty() {
        return Err(mismatch(format!("unknown tensors {}", unused.join(", "))));
    }
    Ok(module)
}

/// Writes `module`'s parameters to `path` as a PyTorch `state_dict` file (`torch.save`'s
/// format, read by `torch.load(path, weights_only=True)`), atomically. Each `(alias,
/// original)` prefix pair repeats the tensors under `original.` as `alias.` too, sharing
/// their storage: MONAI's DynUNet registers its blocks twice, and its strict
/// `load_state_dict` asks for both names.
pub fn save_pytorch<M: PytorchWeights>(
    module: &M,
    path: &Path,
    aliases: &[(String, String)],
) -> Result<(), WeightsError> {
    let write_error = |reason: String| WeightsError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let adapter: Box<dyn ModuleAdapter> = Box::new(to_pytorch_names(module.layout()));
    let mut entries = Vec::new();
    let mut storages = Vec::new();
    for tensor in module.collect(None, Some(adapter), true) {
        if tensor.dtype != DType::F32 {
            return Err(write_error(format!(
                "{} is {:?}, not f32",
                tensor.name, tensor.dtype
            )));
        }
        let bytes = tensor.to_bytes().map_err(|e| write_error(e.to_string()))?;
        let shape = tensor.shape.as_slice().to_vec();
        let storage = storages.len();
        storages.push(bytes.to_vec());
        for (alias, original) in aliases {
            if let Some(rest) = tensor.name.strip_prefix(&format!("{original}.")) {
                let name = format!("{alias}.{rest}");
                entries.push(torch_file::Entry {
                    name,
                    shape: shape.clone(),
                    storage,
                });
            }
        }
        entries.push(torch_file::Entry {
            name: tensor.name,
            shape,
            storage,
        });
    }
    let bytes = torch_file::state_dict_bytes(&entries, &storages)
        .map_err(|e| write_error(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| write_error(e.to_string()))?;
    }
    autoseg_datasets::fsutil::write_bytes_atomic(path, &bytes)
        .map_err(|e| write_error(e.to_string()))
}

/// Translates burn's names and kernel layout into a PyTorch file's.
fn to_pytorch_names(layout: WeightsLayout) -> impl ModuleAdapter + 'static {
    BurnToPyTorchAdapter
        .chain(InstanceNormNames { to_burn: false })
        .chain(PlanarKernels {
            layout,
            to_burn: false,
        })
}

/// Translates a file's PyTorch names and kernel layout into burn's.
fn from_pytorch_names(layout: WeightsLayout) -> impl ModuleAdapter + 'static {
    PyTorchToBurnAdapter
        .chain(InstanceNormNames { to_burn: true })
        .chain(PlanarKernels {
            layout,
            to_burn: true,
        })
}

/// burn-store's PyTorch adapters rename batch, layer, group and RMS norm parameters but
/// not instance norm's (burn 0.22.1); this adapter adds it: `weight`/`bias` in PyTorch,
/// `gamma`/`beta` in burn.
#[derive(Debug, Clone, Copy)]
struct InstanceNormNames {
    /// Direction: PyTorch names to burn names when true.
    to_burn: bool,
}

const INSTANCE_NORM: &str = "Struct:InstanceNorm";

impl InstanceNormNames {
    /// The name a parameter has on the other side, if it is an instance norm's.
    fn counterpart(&self, param: &str, from_burn: bool) -> Option<&'static str> {
        match (param, from_burn) {
            ("gamma", true) => Some("weight"),
            ("beta", true) => Some("bias"),
            ("weight", false) => Some("gamma"),
            ("bias", false) => Some("beta"),
            _ => None,
        }
    }
}

impl ModuleAdapter for InstanceNormNames {
    fn adapt(&self, mut tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        if ctx.module_type() != Some(INSTANCE_NORM) {
            return tensor;
        }
        let split = tensor.name.rfind('.').map_or(0, |i| i + 1);
        if let Some(name) = self.counterpart(&tensor.name[split..], !self.to_burn) {
            tensor.name.truncate(split);
            tensor.name.push_str(name);
        }
        tensor
    }

    fn get_alternative_param_name(&self, param: &str, container_type: &str) -> Option<String> {
        // Asked with the name this side uses, for the name the file holds.
        (container_type == INSTANCE_NORM)
            .then(|| self.counterpart(param, self.to_burn))
            .flatten()
            .map(str::to_string)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

/// Drops or restores the unit z axis of convolution kernels for [`WeightsLayout::Planar`].
#[derive(Debug, Clone, Copy)]
struct PlanarKernels {
    layout: WeightsLayout,
    /// Direction: file to burn when true.
    to_burn: bool,
}

const CONVOLUTIONS: [&str; 2] = ["Struct:Conv3d", "Struct:ConvTranspose3d"];

impl ModuleAdapter for PlanarKernels {
    fn adapt(&self, mut tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        let is_kernel = tensor.name.ends_with(".weight")
            && ctx.module_type().is_some_and(|t| CONVOLUTIONS.contains(&t));
        if self.layout != WeightsLayout::Planar || !is_kernel {
            return tensor;
        }
        // The bytes stay as they are: a trailing unit axis does not move any element.
        let shape = &mut tensor.shape;
        match (self.to_burn, shape.num_dims()) {
            (true, 4) => shape.push(1),
            (false, 5) if shape.as_slice()[4] == 1 => {
                shape.remove(4);
            }
            _ => {}
        }
        tensor
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

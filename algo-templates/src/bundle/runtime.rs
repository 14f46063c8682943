//! Predicting with one trained bundle: read the parts of its configuration inference needs
//! (network, preprocessing, patch size, `inference`), load its weights once, and for each
//! image reorient to RAS, preprocess, slide the window, and bring the classes back to the
//! image's own grid and orientation.

use std::path::{Path, PathBuf};

use autoseg_datasets::{Geometry, LabelVolume, Volume};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::limits::{Pass, check_stepping, check_window};
use super::{BundleError, InferenceConfig, MergedConfig, inference_weights, read_config};
use crate::ComputeDevice;
use crate::inference::resident::{GridProbabilities, prepare_on_device, probabilities_on_device};
use crate::inference::{
    Accumulation, HeadSlices, SlidingWindow, activate, mirror_passes, mirrored, on_device_or_host,
};
use crate::networks::{Network, NetworkConfig};
use crate::weights;
use autoseg_datasets::regions::{Decoding, RegionPlan, check_outputs};
use autoseg_datasets::transforms::preprocess::{
    PreparedImage, PreprocessPlan, prepare_image, restore_probabilities,
};

/// What inference reads of a bundle's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceSettings {
    /// The network.
    pub network: NetworkConfig,
    /// Preprocessing.
    pub preprocessing: PreprocessPlan,
    /// Region-based outputs (one sigmoid channel per region), if the bundle has them.
    pub regions: Option<RegionPlan>,
    /// The training patch size (the default window).
    pub patch_size: [usize; 3],
    /// The sliding window.
    pub inference: InferenceConfig,
}

impl InferenceSettings {
    /// Reads the settings from a bundle; a misspelt key in any of their sections is an
    /// error naming its file (training's keys are training's to check).
    pub fn read(bundle: &Path) -> Result<InferenceSettings, BundleError> {
        let merged = read_config(bundle)?;
        let settings = InferenceSettings {
            network: merged.section(bundle, "network")?,
            preprocessing: merged.section(bundle, "preprocessing")?,
            regions: match merged.values.get("regions") {
                Some(_) => Some(merged.section(bundle, "regions")?),
                None => None,
            },
            patch_size: merged.section(bundle, "patch_size")?,
            inference: match merged.values.get("inference") {
                Some(_) => merged.section(bundle, "inference")?,
                None => InferenceConfig::default(),
            },
        };
        settings.validate(bundle, &merged)?;
        Ok(settings)
    }

    /// Checks what serde cannot: a network that builds, a window it can take that fits this
    /// machine, mirror axes that are distinct image axes.
    fn validate(&self, bundle: &Path, merged: &MergedConfig) -> Result<(), BundleError> {
        self.network
            .validate()
            .map_err(|e| BundleError::invalid(&merged.file_of(bundle, "network"), e.to_string()))?;
        self.preprocessing
            .validate()
            .map_err(|e| BundleError::invalid(&merged.file_of(bundle, "preprocessing"), e))?;
        let outputs = self.network.out_channels();
        let labels = &self.preprocessing.labels;
        check_outputs(labels, self.regions.as_ref(), outputs).map_err(|e| {
            let section = if self.regions.is_some() {
                "regions"
            } else {
                "network"
            };
            BundleError::invalid(&merged.file_of(bundle, section), e)
        })?;
        let inference = &self.inference;
        let infer_file = merged.file_of(bundle, "inference");
        check_stepping(inference.overlap, inference.batch)
            .map_err(|e| BundleError::invalid(&infer_file, format!("inference: {e}")))?;
        // The window is the roi where one is set (in the inference section), else the patch.
        let (section, key, size) = match inference.roi {
            Some(roi) => ("inference", "inference.roi", roi),
            None => ("patch_size", "patch_size", self.patch_size),
        };
        check_window(&self.network, size, inference.batch, Pass::Inference).map_err(|e| {
            BundleError::invalid(&merged.file_of(bundle, section), format!("{key}: {e}"))
        })?;
        let axes = &self.inference.mirror_axes;
        if axes.iter().any(|&a| a > 2) || (1..axes.len()).any(|i| axes[..i].contains(&axes[i])) {
            return Err(BundleError::invalid(
                &merged.file_of(bundle, "inference"),
                format!("inference.mirror_axes {axes:?}: distinct axes among 0, 1, 2"),
            ));
        }
        Ok(())
    }

    /// How the network's outputs decode: classes, or regions.
    pub fn decoding(&self) -> Decoding {
        Decoding::of(self.regions.as_ref())
    }

    /// The label id written for each decoded class: the bundle's labels, or for regions
    /// the background and each region's label.
    pub fn written_labels(&self) -> Vec<u16> {
        match &self.regions {
            None => self.preprocessing.labels.clone(),
            Some(plan) => plan.written_labels(),
        }
    }

    /// The window over whole images.
    pub fn sliding_window(&self, device: ComputeDevice) -> SlidingWindow {
        SlidingWindow {
            roi: self.inference.roi.unwrap_or(self.patch_size),
            overlap: self.inference.overlap,
            batch: self.inference.batch,
            blend: self.inference.blend,
            accumulation: Accumulation::for_device(device),
        }
    }
}

/// A trained bundle, loaded once, predicting any number of images.
pub struct BundlePredictor {
    /// The bundle folder.
    pub bundle: PathBuf,
    /// Its inference settings.
    pub settings: InferenceSettings,
    /// The weights file loaded.
    pub weights: PathBuf,
    network: Network,
    device: Device,
    /// How windows cover an image on that device.
    window: SlidingWindow,
    /// The label id written for each decoded class.
    label_ids: Vec<u16>,
}

impl BundlePredictor {
    /// Loads a bundle's settings and trained weights onto `device`.
    pub fn load(bundle: &Path, device: ComputeDevice) -> Result<BundlePredictor, BundleError> {
        let settings = InferenceSettings::read(bundle)?;
        let weights_path = inference_weights(bundle).ok_or_else(|| {
            BundleError::invalid(
                &autoseg_datasets::Bundle::new(bundle).model_dir(),
                "no trained weights (best.safetensors or last/model.safetensors): \
                 train the bundle first",
            )
        })?;
        let invalid = |e: String| BundleError::invalid(&weights_path, e);
        let network = settings
            .network
            .init(&device.burn_device())
            .map_err(|e| invalid(e.to_string()))?;
        let network = weights::load(network, &weights_path).map_err(|e| invalid(e.to_string()))?;
        Ok(BundlePredictor::from_parts(
            bundle,
            settings,
            weights_path,
            network,
            device,
        ))
    }

    /// A predictor of `network` (on `device`) with `settings`, whose weights came from
    /// `weights` of `bundle`.
    pub(crate) fn from_parts(
        bundle: &Path,
        settings: InferenceSettings,
        weights: PathBuf,
        network: Network,
        device: ComputeDevice,
    ) -> BundlePredictor {
        BundlePredictor {
            bundle: bundle.to_path_buf(),
            window: settings.sliding_window(device),
            label_ids: settings.written_labels(),
            settings,
            weights,
            network,
            device: device.burn_device(),
        }
    }

    /// The same predictor with the window's sums kept where `accumulation` says (tests run
    /// the device-resident path on the CPU backends with it).
    #[cfg(test)]
    pub(crate) fn with_accumulation(mut self, accumulation: Accumulation) -> BundlePredictor {
        self.window.accumulation = accumulation;
        self
    }

    /// The image must have the channels the network was trained on.
    pub(crate) fn check_channels(&self, image: &Volume, path: &Path) -> Result<(), BundleError> {
        let expected = self.settings.network.in_channels();
        if image.channels() != expected {
            return Err(BundleError::invalid(
                path,
                format!(
                    "{} channel(s), but the bundle's network takes {expected}",
                    image.channels()
                ),
            ));
        }
        Ok(())
    }

    /// Class probabilities on the RAS grid of `ras` (`[classes, x, y, z]`, x fastest):
    /// preprocessed, slid over, and brought back; on the device where it keeps the window's
    /// sums ([`Self::streams`] is false), else (or should the device run out of memory) on
    /// the host.
    pub fn bundle_probabilities(&self, ras: &Volume, path: &Path) -> Result<Vec<f32>, BundleError> {
        let on_host = || {
            let prepared = self.network_probabilities(ras, path)?;
            Ok(restore_probabilities(
                &prepared.data,
                self.classes(),
                self.decoding(),
                &prepared.grid,
            ))
        };
        if self.streams() {
            return on_host();
        }
        on_device_or_host(
            "prediction",
            "predicting on the host",
            || {
                let grid = self.device_probabilities(ras, path)?;
                Ok(probabilities_on_device(
                    &[grid],
                    self.classes(),
                    self.decoding(),
                ))
            },
            on_host,
        )
    }

    /// Class probabilities of `ras` on the network's grid, prepared and slid over on the
    /// network's device, and left there ([`crate::inference::resident`]).
    pub fn device_probabilities(
        &self,
        ras: &Volume,
        path: &Path,
    ) -> Result<GridProbabilities, BundleError> {
        self.check_channels(ras, path)?;
        let (image, grid) = prepare_on_device(ras, &self.settings.preprocessing, &self.device)
            .map_err(|e| BundleError::invalid(path, e.to_string()))?;
        let values = self
            .window
            .blend_on_device(image, self.classes(), |x| self.mirrored_probabilities(x));
        Ok(GridProbabilities {
            values,
            grid,
            weight: 1.0,
        })
    }

    /// Class probabilities of `ras` on the network's grid (`[classes, x, y, z]`, z fastest)
    /// with that grid: preprocessed and slid over, not brought back.
    pub fn network_probabilities(
        &self,
        ras: &Volume,
        path: &Path,
    ) -> Result<PreparedImage, BundleError> {
        self.check_channels(ras, path)?;
        let prepared = prepare_image(ras, &self.settings.preprocessing)
            .map_err(|e| BundleError::invalid(path, e.to_string()))?;
        let classes = self.classes();
        let probabilities = self.window.blend(
            &prepared.data,
            prepared.channels,
            prepared.grid.dims,
            classes,
            &self.device,
            |x| self.mirrored_probabilities(x),
        );
        Ok(PreparedImage {
            data: probabilities,
            channels: classes,
            grid: prepared.grid,
        })
    }

    /// The windows' channel probabilities (softmax classes or sigmoid regions), averaged
    /// over every combination of the mirror axes (just the windows themselves without
    /// test-time augmentation).
    pub(crate) fn mirrored_probabilities(&self, x: Tensor<5>) -> Tensor<5> {
        let axes = &self.settings.inference.mirror_axes;
        let passes = mirror_passes(axes);
        let sum = (0..passes)
            .map(|pass| {
                let logits = self.network.forward(mirrored(x.clone(), axes, pass));
                mirrored(activate(self.decoding(), logits), axes, pass)
            })
            .reduce(|a, b| a + b)
            .expect("one pass at least");
        if passes == 1 {
            sum
        } else {
            sum / passes as f32
        }
    }

    /// The network as a stream runs it ([`HeadSlices`]), mirrored as the bundle says.
    pub(crate) fn head_slices(&self) -> HeadSlices<'_> {
        HeadSlices {
            network: &self.network,
            decoding: self.decoding(),
            mirror_axes: &self.settings.inference.mirror_axes,
        }
    }

    /// How windows cover an image on the bundle's device.
    pub fn window(&self) -> &SlidingWindow {
        &self.window
    }

    /// The device the network runs on.
    pub(crate) fn burn_device(&self) -> &Device {
        &self.device
    }

    /// Whether segmenting streams slabs through the volume ([`super::stream`]): where the
    /// sliding window's sums live on the host. A CUDA device keeps its own, whole, and the
    /// whole prediction stays there ([`crate::inference::resident`]).
    pub fn streams(&self) -> bool {
        self.window.accumulation == Accumulation::Host
    }

    /// The network with its trained weights.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Channels the network outputs: classes (background included), or regions.
    pub fn classes(&self) -> usize {
        self.settings.network.out_channels()
    }

    /// How the channels decode into classes.
    pub fn decoding(&self) -> Decoding {
        self.settings.decoding()
    }

    /// The dataset's label id written for each decoded class.
    pub fn label_ids(&self) -> &[u16] {
        &self.label_ids
    }
}

/// A segmentation and, when asked for, the class probabilities it was taken from.
pub struct Prediction {
    /// Label ids (the dataset's own, not class indices) on the image's grid, in its
    /// orientation and with its affine.
    pub labels: LabelVolume,
    /// One channel per class (background first, in the order of the bundle's label ids),
    /// or per region, on the same grid: what the labels are decoded from, before any
    /// clean-up of components.
    pub probabilities: Option<Volume>,
}

/// Something that segments an image: one bundle, or an ensemble of them.
pub trait Segmenter: Sync {
    /// Class probabilities on `ras`, the image reoriented to RAS (`[classes, x, y, z]`, x
    /// fastest). `path` names the image in errors.
    fn ras_probabilities(&self, ras: &Volume, path: &Path) -> Result<Vec<f32>, BundleError>;

    /// The class index of each voxel from those probabilities: their argmax, then whatever
    /// clean-up the segmenter applies (some are guided by the image, `ras`).
    fn classes_from(&self, probabilities: &[f32], ras: &Volume) -> Vec<u8>;

    /// The class index of each voxel of `ras`: [`Self::classes_from`] of
    /// [`Self::ras_probabilities`], which segmenters override to hold less than every class
    /// at the image's resolution at once.
    fn ras_classes(&self, ras: &Volume, path: &Path) -> Result<Vec<u8>, BundleError> {
        Ok(self.classes_from(&self.ras_probabilities(ras, path)?, ras))
    }

    /// The dataset's label id written for each class index.
    fn label_ids(&self) -> &[u16];

    /// Channels of [`Self::ras_probabilities`]: classes, or regions.
    fn channels(&self) -> usize;

    /// What segments, in a line.
    fn describe(&self) -> String;

    /// The labels on `image`'s own grid, with the probabilities too when
    /// `with_probabilities`. `path` names the image in errors. The image is taken, so that
    /// its voxels are held once (as RAS) while it is segmented.
    fn predict(
        &self,
        image: Volume,
        path: &Path,
        with_probabilities: bool,
    ) -> Result<Prediction, BundleError> {
        let grid = *image.geometry();
        let ras = image.into_ras();
        if !with_probabilities {
            let classes = self.ras_classes(&ras, path)?;
            return Ok(Prediction {
                labels: labels_on_image(&grid, &ras, &classes, self.label_ids(), path)?,
                probabilities: None,
            });
        }
        let probabilities = self.ras_probabilities(&ras, path)?;
        let classes = self.classes_from(&probabilities, &ras);
        let labels = labels_on_image(&grid, &ras, &classes, self.label_ids(), path)?;
        let channels = self.channels();
        let probabilities = on_image(&grid, ras.with_data(channels, probabilities), path)?;
        Ok(Prediction {
            labels,
            probabilities: Some(probabilities),
        })
    }

    /// [`Self::predict`]'s labels alone.
    fn segment(&self, image: Volume, path: &Path) -> Result<LabelVolume, BundleError> {
        Ok(self.predict(image, path, false)?.labels)
    }
}

impl Segmenter for BundlePredictor {
    fn ras_probabilities(&self, ras: &Volume, path: &Path) -> Result<Vec<f32>, BundleError> {
        self.bundle_probabilities(ras, path)
    }

    fn classes_from(&self, probabilities: &[f32], _ras: &Volume) -> Vec<u8> {
        self.decoding().classes(probabilities, self.classes())
    }

    fn channels(&self) -> usize {
        self.classes()
    }

    /// Streamed slab by slab ([`super::stream`]) where the sums live on the host, else
    /// on the device ([`super::resident`]), restored one class at a time: the image's
    /// resolution never holds every class.
    fn ras_classes(&self, ras: &Volume, path: &Path) -> Result<Vec<u8>, BundleError> {
        super::resident::mean_classes(&[self], ras, path)
    }

    fn label_ids(&self) -> &[u16] {
        BundlePredictor::label_ids(self)
    }

    fn describe(&self) -> String {
        let inference = &self.settings.inference;
        let mirrored = if inference.mirror_axes.is_empty() {
            String::new()
        } else {
            format!(", mirrored on axes {:?}", inference.mirror_axes)
        };
        format!(
            "{} ({}), window {:?}, overlap {}{mirrored}",
            self.bundle.display(),
            self.weights.display(),
            self.window.roi,
            inference.overlap
        )
    }
}

/// Class indices on an image's RAS grid turned into label ids on the image's own `grid`.
pub fn labels_on_image(
    grid: &Geometry,
    ras: &Volume,
    classes: &[u8],
    label_ids: &[u16],
    path: &Path,
) -> Result<LabelVolume, BundleError> {
    let ids: Vec<u16> = classes.iter().map(|&k| label_ids[k as usize]).collect();
    on_image(grid, ras.with_data(1, ids), path)
}

/// Data on an image's RAS grid brought back to the image's own orientation and affine.
fn on_image<T: Copy>(
    grid: &Geometry,
    on_ras: autoseg_datasets::Image<T>,
    path: &Path,
) -> Result<autoseg_datasets::Image<T>, BundleError> {
    on_ras
        .into_onto(grid)
        .map_err(|m| BundleError::invalid(path, format!("restoring the grid: {m}")))
}

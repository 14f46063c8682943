//! The training configuration for the embedded phantom dataset: a small nnU-Net-style
//! U-Net that learns the phantoms in a couple of minutes on the CPU. The demo and the
//! training tests use it.

use std::path::PathBuf;

use autoseg_templates::networks::{DynUNetConfig, NetworkConfig};

use super::TrainConfig;
use super::config::{DataConfig, ValidationConfig};
use crate::loss::{DeepSupervision, DiceOptions, LossConfig, RegionOptions};
use crate::optim::{OptimizerConfig, Schedule};
use autoseg_datasets::transforms::augment::AugmentConfig;
use autoseg_datasets::transforms::preprocess::{Normalization, PreprocessPlan};

/// A bundle configuration for 32^3 MRI phantoms listed in `datalist` (a path relative to
/// the bundle), fold 0 of 4, 60 epochs of 10 iterations, stopped after 150 s of training.
pub fn phantom_config(datalist: PathBuf) -> TrainConfig {
    let network = DynUNetConfig {
        kernel_sizes: vec![[3; 3]; 4],
        strides: vec![[1; 3], [2; 3], [2; 3], [2; 3]],
        filters: Some(vec![8, 16, 32, 64]),
        deep_supervision_heads: 2,
        ..DynUNetConfig::new(1, 3)
    };
    TrainConfig {
        regions: None,
        data: DataConfig {
            datalist,
            dataroot: None,
            fold: 0,
            num_folds: 4,
            folds: None,
            cache_dir: "../preprocessed".into(),
        },
        preprocessing: PreprocessPlan {
            target_spacing: None,
            normalization: Normalization::ZScoreNonzero,
            labels: vec![0, 1, 2],
            ignore_label: None,
        },
        network: NetworkConfig::Dynunet(network),
        // nnU-Net's Dice: foreground classes only, pooled over the batch; the small lesion
        // is learnt in half the steps that MONAI's per-sample, background-included Dice takes.
        loss: DeepSupervision {
            loss: LossConfig::DiceCe {
                dice: DiceOptions {
                    region: RegionOptions {
                        include_background: false,
                        batch: true,
                        ..RegionOptions::default()
                    },
                    ..DiceOptions::default()
                },
                lambda_dice: 1.0,
                lambda_ce: 1.0,
            },
            weights: Default::default(),
        },
        optimizer: OptimizerConfig::default(),
        schedule: Schedule::Constant,
        learning_rate: 1e-2,
        num_epochs: 60,
        iterations_per_epoch: 10,
        batch_size: 2,
        patch_size: [32, 32, 32],
        grad_clip_norm: Some(12.0),
        mixed_precision: Default::default(),
        early_stop_patience: None,
        time_budget_seconds: Some(150.0),
        seed: 0,
        // The phantoms share one orientation and scale: mirroring and intensity changes are
        // augmentation enough, and the run stays short.
        augment: AugmentConfig {
            p_rotation: 0.0,
            p_scale: 0.0,
            p_low_resolution: 0.0,
            ..AugmentConfig::default()
        },
        sampling: Default::default(),
        validation: ValidationConfig {
            every: 2,
            ..ValidationConfig::default()
        },
        inference: Default::default(),
        prefetch: 4,
        init_weights: None,
    }
}

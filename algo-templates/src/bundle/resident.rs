//! Segmentation on the network's device, for bundles whose device keeps the sliding
//! window's sums (a GPU; [`crate::inference::resident`] does each step): the members that
//! prepare the image on the same grid (the folds of one algorithm) add their probabilities
//! there, each grid's mean is brought back to the image's grid one class at a time, and
//! only class indices leave the device. Where the members' sums live on the host, or the
//! device runs out of memory, the members stream through the host instead ([`super::stream`]).

use std::path::Path;

use autoseg_datasets::Volume;

use super::BundleError;
use super::runtime::BundlePredictor;
use super::stream::streamed_classes;
use crate::inference::on_device_or_host;
use crate::inference::resident::{GridProbabilities, classes_on_device};

/// The class of each voxel of `ras` (x fastest) decoded from the mean probabilities over
/// `members` (the argmax, the first class on ties; or the regions' rule): on their device
/// where it keeps the window's sums, else streamed. The members must output the same
/// classes or regions.
pub fn mean_classes(
    members: &[&BundlePredictor],
    ras: &Volume,
    path: &Path,
) -> Result<Vec<u8>, BundleError> {
    let streamed = || streamed_classes(members, ras, path);
    if members.iter().all(|m| m.streams()) {
        return streamed();
    }
    on_device_or_host(
        "prediction",
        "streaming it through the host",
        || {
            let grids = grid_means(members, ras, path)?;
            let first = members[0];
            Ok(classes_on_device(&grids, first.classes(), first.decoding()))
        },
        streamed,
    )
}

/// Per distinct grid, the mean of its members' probabilities on the device, weighted by
/// their share of `members`.
fn grid_means(
    members: &[&BundlePredictor],
    ras: &Volume,
    path: &Path,
) -> Result<Vec<GridProbabilities>, BundleError> {
    let mut grids: Vec<(GridProbabilities, usize)> = Vec::new();
    for member in members {
        let prepared = member.device_probabilities(ras, path)?;
        match grids.iter_mut().find(|(g, _)| g.grid == prepared.grid) {
            Some((sum, count)) => {
                sum.values = sum.values.clone() + prepared.values;
                *count += 1;
            }
            None => grids.push((prepared, 1)),
        }
    }
    Ok(grids
        .into_iter()
        .map(|(mut sum, count)| {
            if count > 1 {
                sum.values = sum.values / count as f32;
            }
            sum.weight = count as f32 / members.len() as f32;
            sum
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ComputeDevice;
    use crate::bundle::InferenceConfig;
    use crate::bundle::runtime::InferenceSettings;
    use crate::inference::Accumulation;
    use crate::networks::{DynUNetConfig, NetworkConfig};
    use autoseg_datasets::regions::Decoding;
    use autoseg_datasets::transforms::preprocess::{Normalization, PreprocessPlan};
    use autoseg_datasets::{Affine, Geometry};
    use burn::tensor::DType;

    /// A small random DynUNet of 3 classes, mirrored along x, on 1.5 mm voxels (or
    /// `spacing`), its window's sums where `accumulation` says.
    fn predictor(seed: u64, spacing: f64, accumulation: Accumulation) -> BundlePredictor {
        let network = NetworkConfig::Dynunet(DynUNetConfig {
            kernel_sizes: vec![[3; 3], [3; 3], [3; 3]],
            strides: vec![[1; 3], [2; 3], [2; 3]],
            filters: Some(vec![4, 8, 16]),
            ..DynUNetConfig::new(1, 3)
        });
        let settings = InferenceSettings {
            preprocessing: PreprocessPlan {
                target_spacing: Some([spacing; 3]),
                normalization: Normalization::ZScoreNonzero,
                labels: vec![0, 1, 2],
                ignore_label: None,
            },
            regions: None,
            patch_size: [16, 16, 8],
            inference: InferenceConfig {
                mirror_axes: vec![0],
                ..InferenceConfig::default()
            },
            network: network.clone(),
        };
        let device = ComputeDevice::Flex;
        let network = network.init_seeded(&device.burn_device(), seed).unwrap();
        let path = Path::new("test");
        BundlePredictor::from_parts(path, settings, path.into(), network, device)
            .with_accumulation(accumulation)
    }

    /// 1 x 1 x 3.5 mm voxels with a zero border: cropped, and resampled in z on its own.
    fn image() -> Volume {
        let dims = [30, 26, 9];
        let n: usize = dims.iter().product();
        let data = (0..n)
            .map(|i| {
                let (x, y, z) = (i % 30, (i / 30) % 26, i / 780);
                if x < 3 || y > 22 {
                    0.0
                } else {
                    ((x * x + 3 * y) % 17) as f32 * 10.0 + z as f32 + 5.0
                }
            })
            .collect();
        let affine = Affine::from_spacing_origin([1.0, 1.0, 3.5], [0.0; 3]);
        Volume::new(Geometry { dims, affine }, 1, data)
    }

    #[test]
    fn segmenting_on_the_device_is_the_hosts_mean_of_restored_probabilities() {
        let ras = image();
        let path = Path::new("image.nii.gz");
        let voxels: usize = ras.dims().iter().product();
        let members = |accumulation| {
            vec![
                predictor(1, 1.5, accumulation),
                predictor(2, 1.5, accumulation),
                predictor(3, 2.0, accumulation),
            ]
        };
        let on_device = members(Accumulation::Device(DType::F32));
        let on_host = members(Accumulation::Host);
        assert!(!on_device[0].streams() && on_host[0].streams());
        let host: Vec<Vec<f32>> = on_host
            .iter()
            .map(|m| m.bundle_probabilities(&ras, path).unwrap())
            .collect();
        let device = on_device[0].bundle_probabilities(&ras, path).unwrap();
        let worst = device
            .iter()
            .zip(&host[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "probabilities: {worst}");
        // One bundle; two folds on one grid; and a third member on a grid of its own.
        for count in [1, 2, 3] {
            let mean: Vec<f32> = (0..3 * voxels)
                .map(|i| host[..count].iter().map(|p| p[i]).sum::<f32>() / count as f32)
                .collect();
            let want = Decoding::Argmax.classes(&mean, 3);
            let got: Vec<&BundlePredictor> = on_device[..count].iter().collect();
            let got = mean_classes(&got, &ras, path).unwrap();
            let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert!(
                differ * 2000 <= voxels,
                "{count} member(s): {differ} of {voxels}"
            );
            assert!(want.iter().any(|&c| c != want[0]), "more than one class");
        }
    }
}

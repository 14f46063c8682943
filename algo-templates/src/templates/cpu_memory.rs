//! On CPU cores alone a training step's activations live in the machine's memory, which a
//! step can fill as it fills a GPU's: Mindboggle's SegResNetDS (67 classes, a 160x224x144
//! patch) took 18 GB of a 24 GB machine to calibrate. So, as nnU-Net fits its patch to the
//! GPU's memory, any template's batch and then patch shrink on CPU cores until the step's
//! estimate fits a share of the machine's memory. Every template gets the same rule, so it
//! lives here once.

use serde_json::json;

use super::memory::{CPU_BYTES_PER_VALUE, CPU_STEP_MEMORY_SHARE, feature_map};
use super::{Filled, Resources};
use crate::networks::{NetworkConfig, Triple};

/// Shrinks a filled configuration's batch, then its patch, until a training step's
/// estimated memory fits the machine's share ([`Resources::cpu_step_values`]); recorded in
/// the derivation when anything changed. Nothing changes on a GPU or where the machine's
/// memory is unknown.
pub fn fit_cpu_memory(filled: &mut Filled, resources: &Resources) {
    let (Some(_), Some(host_gb)) = (resources.cpu_step_values(), resources.host_memory_gb) else {
        return;
    };
    let config = &filled.config;
    let network: NetworkConfig = serde_json::from_value(config["network"].clone())
        .expect("templates write a network section");
    let patch: Triple =
        serde_json::from_value(config["patch_size"].clone()).expect("templates write a patch size");
    let batch: usize =
        serde_json::from_value(config["batch_size"].clone()).expect("templates write a batch size");
    let (fitted, fitted_batch) = fitted_step(&network, patch, batch, resources);
    if (fitted, fitted_batch) == (patch, batch) {
        return;
    }
    let gb = |p: Triple, b: usize| feature_map(&network, p) * b as f64 * CPU_BYTES_PER_VALUE / 1e9;
    let inputs = [
        ("resources.cpu_only", json!(true)),
        ("resources.host_memory_gb", json!(host_gb)),
        (
            "the template's",
            json!({"patch_size": patch, "batch_size": batch}),
        ),
        ("estimated GB a step, before", json!(gb(patch, batch))),
        (
            "estimated GB a step, after",
            json!(gb(fitted, fitted_batch)),
        ),
    ];
    let rule = format!(
        "on CPU cores a step's activations live in the machine's memory: the batch, then the \
         patch's largest axis (by what it must divide by), shrunk until a step's estimate \
         ({CPU_BYTES_PER_VALUE} bytes per value of nnU-Net's feature-map proxy, as measured \
         on Mindboggle) fits {:.0} % of the machine's memory",
        CPU_STEP_MEMORY_SHARE * 100.0
    );
    let d = &mut filled.derivation;
    if fitted_batch != batch {
        filled.config["batch_size"] = json!(d.record("batch_size", fitted_batch, &rule, &inputs));
    }
    if fitted != patch {
        filled.config["patch_size"] = json!(d.record("patch_size", fitted, &rule, &inputs));
    }
}

/// The patch and batch a step of `network` will take on `resources`: [`fit_cpu_memory`]'s
/// rule, for a template whose other choices follow from the patch training will take (it
/// runs after the template's fill, which keeps its own patch).
pub(crate) fn fitted_step(
    network: &NetworkConfig,
    patch: Triple,
    batch: usize,
    resources: &Resources,
) -> (Triple, usize) {
    match resources.cpu_step_values() {
        Some(allowed) => fit(network, patch, batch, allowed),
        None => (patch, batch),
    }
}

/// The batch, then the patch (its largest axis first, by the network's shape factor),
/// reduced until the step's feature-map values fit `allowed`, or nothing can shrink.
fn fit(network: &NetworkConfig, patch: Triple, batch: usize, allowed: f64) -> (Triple, usize) {
    let values = |p: Triple, b: usize| feature_map(network, p) * b as f64;
    let mut batch = batch;
    while batch > 1 && values(patch, batch) > allowed {
        batch -= 1;
    }
    let factor = network.shape_factor();
    let mut patch = patch;
    while values(patch, batch) > allowed {
        let Some(axis) = (0..3)
            .filter(|&a| patch[a] > factor[a])
            .max_by_key(|&a| patch[a])
        else {
            break;
        };
        patch[axis] -= factor[axis];
    }
    (patch, batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::networks::{DynUNetConfig, SegResNetDsConfig};
    use crate::templates::memory::cpu_step_values;

    fn mindboggle_segresnet() -> NetworkConfig {
        NetworkConfig::SegresnetDs(SegResNetDsConfig {
            init_filters: 16,
            blocks_down: vec![1, 2, 2, 4, 4],
            dsdepth: 4,
            ..SegResNetDsConfig::new(1, 67)
        })
    }

    #[test]
    fn mindboggles_segresnet_shrinks_to_half_of_24_gb_and_task04s_unet_is_left_alone() {
        let allowed = cpu_step_values(24.0);
        let network = mindboggle_segresnet();
        let (patch, batch) = fit(&network, [160, 224, 144], 1, allowed);
        assert_eq!(batch, 1);
        assert!(feature_map(&network, patch) <= allowed);
        assert!(patch.iter().all(|&p| p % 16 == 0 && p >= 16), "{patch:?}");
        assert!(patch[1] < 224, "the largest axis shrinks first: {patch:?}");
        // Its estimate before, as measured: about 18 GB.
        let before = feature_map(&network, [160, 224, 144]) * CPU_BYTES_PER_VALUE / 1e9;
        assert!((15.0..21.0).contains(&before), "{before}");
        let task04 = NetworkConfig::Dynunet(DynUNetConfig {
            kernel_sizes: vec![[3; 3]; 4],
            strides: vec![[1; 3], [2; 3], [2; 3], [2; 3]],
            filters: Some(vec![16, 32, 64, 128]),
            deep_supervision_heads: 2,
            ..DynUNetConfig::new(1, 3)
        });
        assert_eq!(fit(&task04, [40, 56, 40], 9, allowed), ([40, 56, 40], 9));
    }

    #[test]
    fn the_batch_goes_first_and_a_tiny_machine_stops_at_the_smallest_patch() {
        let network = mindboggle_segresnet();
        let one = feature_map(&network, [96, 96, 96]);
        assert_eq!(fit(&network, [96, 96, 96], 3, 1.5 * one), ([96, 96, 96], 1));
        assert_eq!(fit(&network, [96, 96, 96], 2, 0.0), ([16, 16, 16], 1));
    }
}

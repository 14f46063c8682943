//! Sizes a bundle's configuration may ask for: a window (or training patch) the network can
//! take, an overlap that advances, a batch whose activations fit this machine. Checked when a
//! bundle is generated, trained or loaded for prediction, so a mistyped or hostile value is an
//! error naming its key, never a panic or an allocation the system refuses.

use crate::networks::NetworkConfig;
use autoseg_datasets::transforms::preprocess::MAX_PREPARED_VOXELS;

/// Activation bytes per voxel and full-resolution feature, all levels together: a forward
/// pass keeps about 4 f32 tensors per level alive (a level of half the size in each axis adds
/// an eighth, times twice the features: 1.3x in all); training keeps every layer's for the
/// backward pass, about 4x that. Rough on purpose: this refuses sizes off by orders of
/// magnitude (a 10000³ patch, a batch of 10⁸), it does not plan.
const INFERENCE_BYTES_PER_FEATURE_VOXEL: f64 = 4.0 * 4.0 * 1.3;
const TRAINING_BYTES_PER_FEATURE_VOXEL: f64 = 4.0 * INFERENCE_BYTES_PER_FEATURE_VOXEL;

/// What a sliding window or training batch is for: training holds activations for the
/// backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Forward only.
    Inference,
    /// Forward and backward.
    Training,
}

/// Checks how a sliding window steps: an overlap that advances, a batch of at least one.
pub fn check_stepping(overlap: f64, batch: usize) -> Result<(), String> {
    if !(0.0..1.0).contains(&overlap) {
        return Err(format!("overlap {overlap} must be at least 0 and below 1"));
    }
    if batch == 0 {
        return Err("batch must be positive".into());
    }
    Ok(())
}

/// Checks a window (or patch) of `size` voxels, `batch` at a time, against `network`. The
/// error says what is wrong; the caller names the file and key.
pub fn check_window(
    network: &NetworkConfig,
    size: [usize; 3],
    batch: usize,
    pass: Pass,
) -> Result<(), String> {
    let factor = network.shape_factor();
    if (0..3).any(|a| size[a] == 0 || !size[a].is_multiple_of(factor[a])) {
        return Err(format!(
            "{size:?} must be positive multiples of {factor:?} (the network's downsampling)"
        ));
    }
    if batch == 0 {
        return Err("batch must be positive".into());
    }
    let voxels: f64 = size.iter().map(|&s| s as f64).product();
    if voxels > MAX_PREPARED_VOXELS {
        return Err(format!(
            "{size:?} is {voxels:.3e} voxels, more than the {MAX_PREPARED_VOXELS:.3e} an image may have"
        ));
    }
    let per_voxel = match pass {
        Pass::Inference => INFERENCE_BYTES_PER_FEATURE_VOXEL,
        Pass::Training => TRAINING_BYTES_PER_FEATURE_VOXEL,
    };
    let needed = batch as f64 * voxels * network.first_filters() as f64 * per_voxel;
    let available = host_memory_bytes();
    if needed > available {
        return Err(format!(
            "batch {batch} of {size:?} needs about {:.1} GB of activations, more than this \
             machine's {:.1} GB",
            needed / 1e9,
            available / 1e9
        ));
    }
    Ok(())
}

/// This machine's physical memory in bytes (64 GiB where the system does not say).
pub fn host_memory_bytes() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf reads system constants; it has no preconditions.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && size > 0 {
            return pages as f64 * size as f64;
        }
    }
    (64u64 << 30) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::networks::DynUNetConfig;

    #[test]
    fn windows_the_network_cannot_take_are_named() {
        let net = NetworkConfig::Dynunet(DynUNetConfig::new(1, 2));
        let f = net.shape_factor();
        assert!(check_window(&net, f.map(|v| v * 4), 2, Pass::Training).is_ok());
        let cases = [
            ([0, 0, 0], 1, "positive multiples"),
            ([1, 1, 1], 1, "positive multiples"),
            (f, 0, "batch must be positive"),
            (f.map(|v| v * 1000), 1, "voxels"),
            (f.map(|v| v * 8), 100_000_000, "GB of activations"),
        ];
        for (size, batch, words) in cases {
            let err = check_window(&net, size, batch, Pass::Training).unwrap_err();
            assert!(err.contains(words), "{size:?} {batch}: {err}");
        }
        assert!(check_stepping(0.5, 1).is_ok());
        assert!(check_stepping(1.0, 1).unwrap_err().contains("overlap 1"));
        assert!(
            check_stepping(f64::NAN, 1)
                .unwrap_err()
                .contains("overlap NaN")
        );
        assert!(check_stepping(0.5, 0).unwrap_err().contains("batch"));
    }
}

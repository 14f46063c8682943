//! An ensemble's classes taken one class at a time on the image's grid, so that predicting
//! never holds every class of every member at the image's resolution (Auto3DSeg's ensembler
//! runs out of memory there on many-class CT).
//!
//! Under `mean`, members that prepare the image on the same grid (the folds of one algorithm
//! do) add their probabilities on that grid first: bringing probabilities back is a linear
//! resampling, so the mean of the restored maps is the restored mean, and each class is
//! restored once per grid, not once per member. Under `vote`, each member's classes are taken
//! the same way, then counted class by class.
//!
//! Members whose device keeps the sliding window's sums (a GPU) do all of this on the device
//! ([`resident::mean_classes`]); where the sums live on the host, it streams slab by slab
//! instead (`autoseg_templates::bundle::stream`): not even the network's grid holds every
//! class.

use std::path::Path;

use autoseg_datasets::Volume;
use autoseg_datasets::regions::Decoding;
use autoseg_templates::bundle::BundleError;
use autoseg_templates::bundle::resident;
use autoseg_templates::bundle::runtime::{BundlePredictor, Segmenter};

/// The class of each voxel of `ras` (x fastest) decoded from the mean probabilities over
/// `members` (the argmax, the first class on ties; or the regions' rule).
pub fn mean_classes(
    members: &[BundlePredictor],
    ras: &Volume,
    path: &Path,
) -> Result<Vec<u8>, BundleError> {
    let members: Vec<&BundlePredictor> = members.iter().collect();
    resident::mean_classes(&members, ras, path)
}

/// The class most `members` choose for each voxel of `ras` (the first class on ties).
pub fn vote_classes(
    members: &[BundlePredictor],
    ras: &Volume,
    path: &Path,
) -> Result<Vec<u8>, BundleError> {
    let classes = members[0].decoding().class_count(members[0].classes());
    let choices = members
        .iter()
        .map(|m| m.ras_classes(ras, path))
        .collect::<Result<Vec<_>, BundleError>>()?;
    let voxels: usize = ras.dims().iter().product();
    let mut argmax = Decoding::Argmax.start(voxels);
    let mut votes = vec![0f32; voxels];
    for k in 0..classes {
        votes.fill(0.0);
        for choice in &choices {
            for (v, _) in votes
                .iter_mut()
                .zip(choice)
                .filter(|(_, c)| **c as usize == k)
            {
                *v += 1.0;
            }
        }
        argmax.offer(k, &votes);
    }
    Ok(argmax.classes())
}

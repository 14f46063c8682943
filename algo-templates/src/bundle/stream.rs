//! Segmentation streamed through the volume, so that no stage holds every class at the
//! image's resolution nor at the network's: each group of bundles that prepare the image
//! alike and slide the same window (the folds of one algorithm) shares one
//! [`SlabStream`], its members adding their windows into the same sums; a [`RasPlanes`]
//! reads its final slices where they lie and brings them back to the image's RAS grid plane
//! by plane;
//! the groups' planes are averaged, weighted by their members, and each plane's decoded
//! classes (argmax, or the regions' rule) are written into the one-byte class map. Peak
//! memory grows with a window's depth and a plane, not with the volume.

use std::path::Path;

use autoseg_datasets::Volume;
use autoseg_datasets::transforms::preprocess::{PreparedImage, prepare_image};
use autoseg_datasets::transforms::restore::RasPlanes;

use super::BundleError;
use super::runtime::BundlePredictor;
use crate::inference::{HeadSlices, SlabStream, WindowForward};

/// Bundles whose prepared image and window are the same.
struct Group<'a> {
    members: Vec<&'a BundlePredictor>,
    image: PreparedImage,
}

/// The class of each voxel of `ras` (x fastest) decoded from the mean probabilities over
/// `members` (the argmax, the first class on ties; or the regions' rule), streamed. The
/// members must output the same classes or regions.
pub fn streamed_classes(
    members: &[&BundlePredictor],
    ras: &Volume,
    path: &Path,
) -> Result<Vec<u8>, BundleError> {
    let groups = groups(members, ras, path)?;
    let classes = members[0].classes();
    let decoding = members[0].decoding();
    let mut streams: Vec<(SlabStream, RasPlanes, f32)> = Vec::new();
    let mut grouped = Vec::new();
    for Group { members: m, image } in groups {
        let planes = RasPlanes::new(&image.grid, classes, decoding);
        let window = m[0].window();
        let stream = SlabStream::new(window, image.data, image.channels, image.grid.dims, classes);
        let weight = m.len() as f32 / members.len() as f32;
        streams.push((stream, planes, weight));
        grouped.push(m);
    }
    let [rx, ry, rz] = ras.dims();
    let area = rx * ry;
    let mut labels = vec![0u8; area * rz];
    for out in labels.chunks_exact_mut(area) {
        // One group's plane is the mean itself; several are summed by weight.
        let mut mean: Option<Vec<f32>> = None;
        for ((stream, planes, weight), group) in streams.iter_mut().zip(&grouped) {
            let plane = next_plane(stream, planes, group);
            match mean.as_mut() {
                None if *weight == 1.0 => mean = Some(plane),
                None => mean = Some(plane.iter().map(|p| *weight * p).collect()),
                Some(sum) => sum
                    .iter_mut()
                    .zip(plane)
                    .for_each(|(m, p)| *m += *weight * p),
            }
        }
        let mean = mean.expect("one group at least");
        out.copy_from_slice(&decoding.classes(&mean, classes));
    }
    Ok(labels)
}

/// Groups `members` by how they prepare `ras` and slide over it.
fn groups<'a>(
    members: &[&'a BundlePredictor],
    ras: &Volume,
    path: &Path,
) -> Result<Vec<Group<'a>>, BundleError> {
    let mut groups: Vec<Group> = Vec::new();
    for &member in members {
        member.check_channels(ras, path)?;
        let alike = |g: &&mut Group| {
            let first = g.members[0];
            first.settings.preprocessing == member.settings.preprocessing
                && first.window() == member.window()
        };
        if let Some(group) = groups.iter_mut().find(alike) {
            group.members.push(member);
            continue;
        }
        let image = prepare_image(ras, &member.settings.preprocessing)
            .map_err(|e| BundleError::invalid(path, e.to_string()))?;
        groups.push(Group {
            members: vec![member],
            image,
        });
    }
    Ok(groups)
}

/// The group's next RAS plane, sliding its members over further slabs as it needs them.
fn next_plane(
    stream: &mut SlabStream,
    planes: &mut RasPlanes,
    members: &[&BundlePredictor],
) -> Vec<f32> {
    let forwards: Vec<HeadSlices> = members.iter().map(|m| m.head_slices()).collect();
    let forwards: Vec<&dyn WindowForward> = forwards.iter().map(|f| f as _).collect();
    let device = members[0].burn_device();
    loop {
        if let Some(plane) = planes.next_plane(stream) {
            return plane;
        }
        assert!(
            stream.advance(&forwards, device),
            "the last windows complete every plane"
        );
    }
}

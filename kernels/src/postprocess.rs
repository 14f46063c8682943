//! Clean-ups of label maps built on connected components: keep the largest component of a
//! class, drop small components, fill holes. Each comes in two forms: one that labels the
//! components itself (on the CPU), and an `_in` form that takes components found elsewhere
//! (the CUDA path's `Gpu::label_components`), the labelling being the expensive part.

use crate::components::{Components, Connectivity, label_components};

/// Sets every voxel of `class` outside its largest component to background (0). A class that
/// is absent is left alone.
pub fn keep_largest(labels: &mut [u16], dims: [usize; 3], class: u16, connectivity: Connectivity) {
    let components = label_components(labels, dims, connectivity);
    keep_largest_in(labels, &components, class);
}

/// [`keep_largest`] with `labels`' components already found.
pub fn keep_largest_in(labels: &mut [u16], components: &Components, class: u16) {
    let Some(largest) = components
        .components
        .iter()
        .enumerate()
        .filter(|(_, c)| c.class == class)
        .max_by_key(|(i, c)| (c.size, std::cmp::Reverse(*i)))
        .map(|(i, _)| i as u32)
    else {
        return;
    };
    for (label, id) in labels.iter_mut().zip(components.voxel_index()) {
        if *label == class && id != largest {
            *label = 0;
        }
    }
}

/// Sets to background every component of a foreground class smaller than `min_size` voxels;
/// returns how many were removed.
pub fn remove_small(
    labels: &mut [u16],
    dims: [usize; 3],
    min_size: u64,
    connectivity: Connectivity,
) -> usize {
    let components = label_components(labels, dims, connectivity);
    remove_small_in(labels, &components, min_size)
}

/// [`remove_small`] for the components of one class only; the other classes are left as
/// they are.
pub fn remove_small_of_class(
    labels: &mut [u16],
    dims: [usize; 3],
    class: u16,
    min_size: u64,
    connectivity: Connectivity,
) -> usize {
    let components = label_components(labels, dims, connectivity);
    remove_where(labels, &components, |c| {
        c.class == class && c.size < min_size
    })
}

/// [`remove_small`] with `labels`' components already found.
pub fn remove_small_in(labels: &mut [u16], components: &Components, min_size: u64) -> usize {
    remove_where(labels, components, |c| c.class != 0 && c.size < min_size)
}

/// Sets to background the voxels of every component `remove` picks; returns how many it
/// picked.
fn remove_where(
    labels: &mut [u16],
    components: &Components,
    remove: impl Fn(&crate::components::Component) -> bool,
) -> usize {
    let small: Vec<bool> = components.components.iter().map(remove).collect();
    for (label, id) in labels.iter_mut().zip(components.voxel_index()) {
        if small[id as usize] {
            *label = 0;
        }
    }
    small.iter().filter(|&&s| s).count()
}

/// Fills the holes of a binary mask: background regions (6-connected, as scipy's
/// `binary_fill_holes`) that do not reach the volume's border become foreground.
pub fn fill_holes(mask: &mut [bool], dims: [usize; 3]) {
    let labels: Vec<u16> = mask.iter().map(|&m| m as u16).collect();
    let components = label_components(&labels, dims, Connectivity::Six);
    fill_holes_in(mask, dims, &components);
}

/// [`fill_holes`] with the components (6-connected, of the mask as 0/1 labels) already found.
pub fn fill_holes_in(mask: &mut [bool], dims: [usize; 3], components: &Components) {
    let enclosed: Vec<bool> = components
        .components
        .iter()
        .map(|c| c.class == 0 && (0..3).all(|a| c.bbox_min[a] > 0 && c.bbox_max[a] + 1 < dims[a]))
        .collect();
    for (m, id) in mask.iter_mut().zip(components.voxel_index()) {
        if enclosed[id as usize] {
            *m = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(dims: [usize; 3], boxes: &[([usize; 3], [usize; 3], u16)]) -> Vec<u16> {
        let mut v = vec![0u16; dims.iter().product()];
        for &(lo, hi, class) in boxes {
            for z in lo[2]..hi[2] {
                for y in lo[1]..hi[1] {
                    for x in lo[0]..hi[0] {
                        v[(z * dims[1] + y) * dims[0] + x] = class;
                    }
                }
            }
        }
        v
    }

    /// Two blocks of class 1 (27 and 8 voxels) and a bar of class 2 (2 voxels).
    fn three_parts() -> ([usize; 3], Vec<u16>) {
        let dims = [12, 6, 6];
        let parts = [
            ([0, 0, 0], [3, 3, 3], 1),
            ([6, 0, 0], [8, 2, 2], 1),
            ([10, 0, 0], [12, 1, 1], 2),
        ];
        (dims, volume(dims, &parts))
    }

    #[test]
    fn keeps_the_largest_component_only() {
        let (dims, mut v) = three_parts();
        keep_largest(&mut v, dims, 1, Connectivity::TwentySix);
        assert_eq!(v.iter().filter(|&&l| l == 1).count(), 27);
        assert_eq!(
            v.iter().filter(|&&l| l == 2).count(),
            2,
            "other classes untouched"
        );
    }

    #[test]
    fn removes_components_below_the_size() {
        let (dims, mut v) = three_parts();
        assert_eq!(remove_small(&mut v, dims, 10, Connectivity::Six), 2);
        assert_eq!(v.iter().filter(|&&l| l != 0).count(), 27);
    }

    #[test]
    fn fills_enclosed_holes_but_not_open_ones() {
        let dims = [7, 7, 7];
        // A hollow cube (shell of 5^3 around a 3^3 hole) and a cup open to the border.
        let shell = volume(dims, &[([1, 1, 1], [6, 6, 6], 1)]);
        let mut mask: Vec<bool> = shell.iter().map(|&l| l == 1).collect();
        for z in 2..5 {
            for y in 2..5 {
                for x in 2..5 {
                    mask[(z * 7 + y) * 7 + x] = false;
                }
            }
        }
        let mut open = mask.clone();
        open[(3 * 7 + 3) * 7 + 1] = false; // a tunnel from the hole to the outside
        fill_holes(&mut mask, dims);
        assert_eq!(mask.iter().filter(|&&m| m).count(), 125);
        let before = open.iter().filter(|&&m| m).count();
        fill_holes(&mut open, dims);
        assert_eq!(open.iter().filter(|&&m| m).count(), before);
    }
}

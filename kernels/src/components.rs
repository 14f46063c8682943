//! Connected components of a label map in 3D, every class at once.
//!
//! Two voxels belong to the same component when they hold the same class and touch through a
//! face (6-connectivity) or through a face, edge or corner (26-connectivity, what scipy's
//! `label` with a full structure and skimage's default give).

use crate::runs::equal_runs;

/// Which neighbours touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connectivity {
    /// Faces only.
    Six,
    /// Faces, edges and corners.
    TwentySix,
}

/// One connected component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The class its voxels hold.
    pub class: u16,
    /// Voxel count.
    pub size: u64,
    /// Smallest (x, y, z) index of its voxels.
    pub bbox_min: [usize; 3],
    /// Largest (x, y, z) index of its voxels (inclusive).
    pub bbox_max: [usize; 3],
}

impl Component {
    /// A component of `class` with no voxels yet.
    fn empty(class: u16) -> Component {
        Component {
            class,
            size: 0,
            bbox_min: [usize::MAX; 3],
            bbox_max: [0; 3],
        }
    }

    /// Adds a run (in row y of slice z) to the component.
    fn absorb(&mut self, run: &Run, y: usize, z: usize) {
        self.size += (run.x1 - run.x0) as u64;
        for (a, (lo, hi)) in [(run.x0, run.x1 - 1), (y, y), (z, z)]
            .into_iter()
            .enumerate()
        {
            self.bbox_min[a] = self.bbox_min[a].min(lo);
            self.bbox_max[a] = self.bbox_max[a].max(hi);
        }
    }

    /// Bounding-box extent in voxels along x, y, z.
    pub fn bbox_shape(&self) -> [usize; 3] {
        std::array::from_fn(|a| self.bbox_max[a] - self.bbox_min[a] + 1)
    }
}

/// The components of a label map, in raster order of their first voxel, and which voxel
/// belongs to which (kept per run; [`Components::voxel_index`] spells it out per voxel).
#[derive(Debug, Clone, PartialEq)]
pub struct Components {
    /// Every component of every class, background included.
    pub components: Vec<Component>,
    runs: Vec<Run>,
    /// Per run, the index of its component.
    run_component: Vec<u32>,
}

impl Components {
    /// The components from every voxel's root, the first voxel (in raster order) of its
    /// component, as the CUDA path finds them; numbered as [`label_components`] numbers them.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn from_roots(labels: &[u16], dims: [usize; 3], roots: &[u32]) -> Components {
        let [nx, ny, _] = dims;
        let (runs, _) = find_runs(labels, nx);
        let mut component_of_root: std::collections::HashMap<u32, u32> =
            std::collections::HashMap::new();
        let mut components: Vec<Component> = Vec::new();
        let mut run_component = Vec::with_capacity(runs.len());
        for run in &runs {
            let first = run.row_offset + run.x0;
            let root = roots[first];
            let (y, z) = ((first / nx) % ny, first / (nx * ny));
            let id = *component_of_root.entry(root).or_insert_with(|| {
                components.push(Component::empty(run.class));
                components.len() as u32 - 1
            });
            run_component.push(id);
            components[id as usize].absorb(run, y, z);
        }
        Components {
            components,
            runs,
            run_component,
        }
    }

    /// Per voxel (x fastest), the index into `components`.
    pub fn voxel_index(&self) -> Vec<u32> {
        let mut index = Vec::with_capacity(self.runs.last().map_or(0, |r| r.row_offset + r.x1));
        for (run, &id) in self.runs.iter().zip(&self.run_component) {
            index.extend(std::iter::repeat_n(id, run.x1 - run.x0));
        }
        index
    }

    /// The components of one class.
    pub fn of_class(&self, class: u16) -> impl Iterator<Item = &Component> {
        self.components.iter().filter(move |c| c.class == class)
    }
}

/// A maximal run of equal labels along x within one row.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    /// Linear index of the run's row start.
    row_offset: usize,
    x0: usize,
    /// Exclusive end.
    x1: usize,
    class: u16,
}

/// Labels the connected components of every class of `labels` (x fastest, `dims` = [nx, ny, nz]).
///
/// Works on runs along x: each row is cut into maximal runs of one class, and a run is joined
/// with the runs of the already-visited neighbouring rows (y−1 in its slice; y−1, y, y+1 in the
/// slice before) that hold the same class and overlap it, or touch it diagonally under
/// 26-connectivity. Union-find runs over runs, not voxels.
///
/// # Panics
/// When `labels.len()` is not the product of `dims` or exceeds `u32::MAX` voxels.
pub fn label_components(
    labels: &[u16],
    dims: [usize; 3],
    connectivity: Connectivity,
) -> Components {
    let [nx, ny, nz] = dims;
    assert_eq!(
        labels.len(),
        nx * ny * nz,
        "labels do not fill dims {dims:?}"
    );
    assert!(
        labels.len() < u32::MAX as usize,
        "volume too large to label"
    );
    let (runs, row_start) = find_runs(labels, nx);
    let mut parent: Vec<u32> = (0..runs.len() as u32).collect();
    let reach = usize::from(connectivity == Connectivity::TwentySix);
    let row = |y: usize, z: usize| z * ny + y;
    for z in 0..nz {
        for y in 0..ny {
            let mut neighbours = Vec::with_capacity(4);
            if y > 0 {
                neighbours.push(row(y - 1, z));
            }
            if z > 0 {
                neighbours.push(row(y, z - 1));
                if reach == 1 {
                    if y > 0 {
                        neighbours.push(row(y - 1, z - 1));
                    }
                    if y + 1 < ny {
                        neighbours.push(row(y + 1, z - 1));
                    }
                }
            }
            let here = row_start[row(y, z)]..row_start[row(y, z) + 1];
            for other in neighbours {
                let there = row_start[other]..row_start[other + 1];
                join_rows(&runs, here.clone(), there, reach, &mut parent);
            }
        }
    }
    number_roots(runs, &row_start, dims, &mut parent)
}

/// Cuts every row into maximal runs; `row_start[r]..row_start[r + 1]` are row r's runs.
fn find_runs(labels: &[u16], nx: usize) -> (Vec<Run>, Vec<usize>) {
    let rows = labels.len() / nx.max(1);
    let mut runs = Vec::new();
    let mut row_start = Vec::with_capacity(rows + 1);
    for (r, line) in labels.chunks_exact(nx.max(1)).enumerate() {
        row_start.push(runs.len());
        equal_runs(line, |class, xs| {
            runs.push(Run {
                row_offset: r * nx,
                x0: xs.start,
                x1: xs.end,
                class,
            })
        });
    }
    row_start.push(runs.len());
    (runs, row_start)
}

/// Unions the runs of one row with the touching same-class runs of a neighbouring row; `reach`
/// widens the overlap test by one voxel for diagonal contact.
fn join_rows(
    runs: &[Run],
    here: std::ops::Range<usize>,
    there: std::ops::Range<usize>,
    reach: usize,
    parent: &mut [u32],
) {
    let mut j = there.start;
    for i in here {
        let a = runs[i];
        while j < there.end && runs[j].x1 + reach <= a.x0 {
            j += 1;
        }
        let mut k = j;
        while k < there.end && runs[k].x0 < a.x1 + reach {
            if runs[k].class == a.class {
                union(parent, i as u32, k as u32);
            }
            k += 1;
        }
    }
}

/// Numbers the root runs in raster order and gathers sizes and bounding boxes.
fn number_roots(
    runs: Vec<Run>,
    row_start: &[usize],
    dims: [usize; 3],
    parent: &mut [u32],
) -> Components {
    let ny = dims[1];
    let mut components: Vec<Component> = Vec::new();
    let mut component_of_root = vec![u32::MAX; runs.len()];
    let mut run_component = vec![0u32; runs.len()];
    for r in 0..row_start.len() - 1 {
        let (y, z) = (r % ny, r / ny);
        for i in row_start[r]..row_start[r + 1] {
            let run = runs[i];
            let root = find(parent, i as u32) as usize;
            if component_of_root[root] == u32::MAX {
                component_of_root[root] = components.len() as u32;
                components.push(Component::empty(run.class));
            }
            let id = component_of_root[root];
            run_component[i] = id;
            components[id as usize].absorb(&run, y, z);
        }
    }
    Components {
        components,
        runs,
        run_component,
    }
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        let grand = parent[parent[i as usize] as usize];
        parent[i as usize] = grand;
        i = grand;
    }
    i
}

/// Joins two sets; the smaller index becomes the root, so every root is its set's first run
/// in raster order.
fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        parent[hi as usize] = lo;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::neighbour;
    use crate::testing::Lcg;

    /// Flood fill from every unvisited voxel: the obvious algorithm, as the reference.
    fn flood_fill(labels: &[u16], dims: [usize; 3], conn: Connectivity) -> Vec<(u16, u64)> {
        let [nx, ny, _] = dims;
        let mut seen = vec![false; labels.len()];
        let mut out = Vec::new();
        for start in 0..labels.len() {
            if seen[start] {
                continue;
            }
            seen[start] = true;
            let mut stack = vec![start];
            let mut size = 0;
            while let Some(i) = stack.pop() {
                size += 1;
                let (x, y, z) = (
                    (i % nx) as isize,
                    ((i / nx) % ny) as isize,
                    (i / (nx * ny)) as isize,
                );
                for dz in -1isize..=1 {
                    for dy in -1isize..=1 {
                        for dx in -1isize..=1 {
                            let manhattan = dx.abs() + dy.abs() + dz.abs();
                            if manhattan == 0 || (conn == Connectivity::Six && manhattan > 1) {
                                continue;
                            }
                            let Some(j) = neighbour(dims, [x, y, z], [dx, dy, dz]) else {
                                continue;
                            };
                            if !seen[j] && labels[j] == labels[start] {
                                seen[j] = true;
                                stack.push(j);
                            }
                        }
                    }
                }
            }
            out.push((labels[start], size));
        }
        out
    }

    #[test]
    fn matches_flood_fill_on_random_volumes() {
        for (seed, classes) in [(1, 2), (2, 3), (3, 5)] {
            let dims = [13, 9, 7];
            let labels = Lcg(seed).labels(dims.iter().product(), classes);
            for conn in [Connectivity::Six, Connectivity::TwentySix] {
                let got = label_components(&labels, dims, conn);
                let got: Vec<(u16, u64)> =
                    got.components.iter().map(|c| (c.class, c.size)).collect();
                assert_eq!(got, flood_fill(&labels, dims, conn), "seed {seed} {conn:?}");
            }
        }
    }

    #[test]
    fn numbering_from_roots_equals_the_run_labelling() {
        let dims = [11, 7, 5];
        let labels = Lcg(4).labels(dims.iter().product(), 3);
        for conn in [Connectivity::Six, Connectivity::TwentySix] {
            let direct = label_components(&labels, dims, conn);
            // Every voxel's root: the first voxel of its component (what the GPU computes).
            let index = direct.voxel_index();
            let mut first = vec![u32::MAX; direct.components.len()];
            for (i, &c) in index.iter().enumerate() {
                first[c as usize] = first[c as usize].min(i as u32);
            }
            let roots: Vec<u32> = index.iter().map(|&c| first[c as usize]).collect();
            assert_eq!(
                Components::from_roots(&labels, dims, &roots),
                direct,
                "{conn:?}"
            );
        }
    }

    #[test]
    fn diagonal_voxels_join_only_under_26_connectivity() {
        let dims = [3, 3, 3];
        let mut labels = vec![0u16; 27];
        labels[0] = 1; // (0,0,0)
        labels[13] = 1; // (1,1,1): a corner away
        let six = label_components(&labels, dims, Connectivity::Six);
        assert_eq!(six.of_class(1).count(), 2);
        let full = label_components(&labels, dims, Connectivity::TwentySix);
        let ones: Vec<_> = full.of_class(1).collect();
        assert_eq!(ones.len(), 1);
        assert_eq!(ones[0].size, 2);
        assert_eq!(ones[0].bbox_shape(), [2, 2, 2]);
        let index = full.voxel_index();
        assert_eq!(index.len(), 27);
        assert_eq!(index[0], index[13]);
        assert_ne!(index[0], index[1]);
    }
}

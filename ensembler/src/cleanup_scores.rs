//! A clean-up's Dice counted from the components it removes, instead of applying it to the
//! volume: cross-validation tries keep-largest and a few size thresholds for every class,
//! and applying each trial (with every clean-up chosen so far) labelled each case's
//! components once per clean-up. At 40 classes of 192x192x160 that was thousands of
//! labellings, most of an hour on 2 cores. Here each case is labelled once.
//!
//! A component clean-up of class k turns some of k's components into background: only k's
//! outcomes move (each removed component takes its true positives to false negatives and
//! its other annotated voxels out of the false positives), and k's components do not depend
//! on what happens to other classes. So every trial is a sum over a few components.

use autoseg_kernels::components::{Connectivity, label_components};

use crate::cleanup::Cleanups;

/// One case's predicted components, each with how it scores against the reference, and the
/// outcomes (TP, FP, FN) per foreground class before any component clean-up.
pub(crate) struct ScoredCase {
    /// Per class index, its components in raster order of their first voxel.
    by_class: Vec<Vec<ScoredComponent>>,
    outcomes: Vec<(u64, u64, u64)>,
}

/// A component of a predicted class.
struct ScoredComponent {
    size: u64,
    /// Its voxels whose reference is its class.
    hits: u64,
    /// Its voxels the reference leaves unannotated (the ignore label): they count nowhere.
    ignored: u64,
}

impl ScoredCase {
    /// `winners` (class indices) against `reference` on a `dims` grid; `outcomes` are the
    /// per-class outcomes of `winners` as validation counts them (ignored voxels left out).
    pub(crate) fn new(
        winners: &[u16],
        reference: &[u8],
        dims: [usize; 3],
        outcomes: Vec<(u64, u64, u64)>,
        ignore: Option<u16>,
    ) -> ScoredCase {
        let labelled = label_components(winners, dims, Connectivity::TwentySix);
        let mut scores = vec![(0u64, 0u64); labelled.components.len()];
        for ((&w, &r), id) in winners.iter().zip(reference).zip(labelled.voxel_index()) {
            let (hits, ignored) = &mut scores[id as usize];
            let r = r as u16;
            *hits += (w != 0 && r == w) as u64;
            *ignored += (Some(r) == ignore) as u64;
        }
        let slots = (labelled.components.iter().map(|c| c.class as usize + 1)).max();
        let mut by_class: Vec<Vec<ScoredComponent>> = std::iter::repeat_with(Vec::new)
            .take(slots.unwrap_or(0))
            .collect();
        for (c, (hits, ignored)) in labelled.components.iter().zip(scores) {
            by_class[c.class as usize].push(ScoredComponent {
                size: c.size,
                hits,
                ignored,
            });
        }
        ScoredCase { by_class, outcomes }
    }

    /// The per-class outcomes after `cleanups`' component clean-ups (its CRF, if any, is in
    /// the winners already), as applying them with [`Cleanups::apply`] would give.
    pub(crate) fn outcomes(&self, cleanups: &Cleanups) -> Vec<(u64, u64, u64)> {
        let mut outcomes = self.outcomes.clone();
        let mut classes: Vec<u8> = (cleanups.keep_largest.iter().copied())
            .chain(cleanups.remove_small.iter().map(|&(c, _)| c))
            .collect();
        classes.sort_unstable();
        classes.dedup();
        for class in classes {
            let k = class as usize;
            let (Some(components), Some(o)) = (
                self.by_class.get(k),
                k.checked_sub(1).and_then(|k| outcomes.get_mut(k)),
            ) else {
                continue;
            };
            // The kept one as `keep_largest` picks it: the largest, the first of equals.
            let largest = (cleanups.keep_largest.contains(&class))
                .then(|| {
                    (components.iter().enumerate())
                        .max_by_key(|(i, c)| (c.size, std::cmp::Reverse(*i)))
                })
                .flatten()
                .map(|(i, _)| i);
            // Removing under one size, then under another, removes under the larger.
            let min_size = (cleanups.remove_small.iter())
                .filter(|&&(c, _)| c == class)
                .map(|&(_, size)| size)
                .max();
            for (i, c) in components.iter().enumerate() {
                if largest.is_some_and(|l| l != i) || min_size.is_some_and(|m| c.size < m) {
                    o.0 -= c.hits;
                    o.1 -= c.size - c.hits - c.ignored;
                    o.2 += c.hits;
                }
            }
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoseg_datasets::regions::Targets;

    /// A label map of three classes in blobs and strays, a reference that overlaps it in
    /// part, with unannotated voxels.
    fn case() -> (Vec<u16>, Vec<u8>, [usize; 3]) {
        let dims = [12, 9, 7];
        let n: usize = dims.iter().product();
        let winners: Vec<u16> = (0..n)
            .map(|i| {
                let (x, y, z) = (i % 12, (i / 12) % 9, i / 108);
                match (x, y, z) {
                    _ if (i * 7919) % 97 == 0 => ((i / 97) % 3 + 1) as u16, // strays
                    (0..=4, 0..=3, _) => 1,
                    (7..=10, 5..=8, 2..=5) => 2,
                    (6..=8, 0..=2, 0..=1) | (10..=11, 0..=1, 5..=6) => 3,
                    _ => 0,
                }
            })
            .collect();
        let reference: Vec<u8> = (0..n)
            .map(|i| match winners[i] {
                _ if i % 11 == 0 => 9, // unannotated
                w if i % 5 == 0 => ((w + 1) % 4) as u8,
                w => w as u8,
            })
            .collect();
        (winners, reference, dims)
    }

    #[test]
    fn counted_outcomes_equal_the_clean_ups_applied() {
        let (winners, reference, dims) = case();
        let ignore = Some(9);
        let targets = Targets::Classes(4);
        let as_u16: Vec<u16> = reference.iter().map(|&r| r as u16).collect();
        let outcomes = targets.outcomes(&winners, &as_u16, ignore);
        let scored = ScoredCase::new(&winners, &reference, dims, outcomes, ignore);
        let trials = [
            Cleanups::default(),
            Cleanups {
                keep_largest: vec![1, 3],
                ..Cleanups::default()
            },
            Cleanups {
                remove_small: vec![(2, 2), (3, 9)],
                ..Cleanups::default()
            },
            Cleanups {
                keep_largest: vec![2],
                remove_small: vec![(2, 500), (1, 3)],
                crf: false,
            },
            Cleanups {
                remove_small: vec![(1, 2), (1, 40)],
                ..Cleanups::default()
            },
        ];
        for cleanups in trials {
            let mut applied = winners.clone();
            cleanups.apply(&mut applied, dims);
            let want = targets.outcomes(&applied, &as_u16, ignore);
            assert_eq!(scored.outcomes(&cleanups), want, "{cleanups:?}");
        }
    }
}

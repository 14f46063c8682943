//! What a Dice is taken of: each foreground class, or each region.

use autoseg_kernels::overlap::ConfusionMatrix;

use super::RegionPlan;

/// What a Dice is taken of, comparing a predicted class map with a reference one.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Each foreground class of this many (background included), both maps in one index.
    Classes(usize),
    /// Each region: which regions each predicted class index, and each reference class
    /// index, belongs to (one bit per region).
    Regions {
        /// Region bits of each predicted class index.
        predicted: Vec<u64>,
        /// Region bits of each reference class index.
        reference: Vec<u64>,
        /// The number of regions.
        count: usize,
    },
}

impl Targets {
    /// Regions scored on maps whose class indices stand for label ids: the predicted map's
    /// `predicted_ids`, the reference's `reference_ids`.
    pub fn regions(plan: &RegionPlan, predicted_ids: &[u16], reference_ids: &[u16]) -> Targets {
        let bits = |ids: &[u16]| ids.iter().map(|&id| plan.membership(id)).collect();
        Targets::Regions {
            predicted: bits(predicted_ids),
            reference: bits(reference_ids),
            count: plan.regions.len(),
        }
    }

    /// Targets scored: foreground classes or regions.
    pub fn count(&self) -> usize {
        match self {
            Targets::Classes(classes) => classes.saturating_sub(1),
            Targets::Regions { count, .. } => *count,
        }
    }

    /// (true positives, false positives, false negatives) of each target, leaving out the
    /// voxels whose reference is `ignore`.
    ///
    /// # Panics
    /// When the maps differ in length or hold an index past the targets' tables.
    pub fn outcomes(
        &self,
        predicted: &[u16],
        reference: &[u16],
        ignore: Option<u16>,
    ) -> Vec<(u64, u64, u64)> {
        match self {
            Targets::Classes(classes) => {
                let m = ConfusionMatrix::of_annotated(predicted, reference, *classes, ignore);
                (1..*classes).map(|c| m.outcomes(c)).collect()
            }
            Targets::Regions {
                predicted: p_bits,
                reference: r_bits,
                count,
            } => {
                assert_eq!(predicted.len(), reference.len(), "maps of different sizes");
                let mut out = vec![(0u64, 0u64, 0u64); *count];
                for (&p, &r) in predicted.iter().zip(reference) {
                    if Some(r) == ignore {
                        continue;
                    }
                    let (p, r) = (p_bits[p as usize], r_bits[r as usize]);
                    if p | r == 0 {
                        continue;
                    }
                    for (j, o) in out.iter_mut().enumerate() {
                        let (pj, rj) = (p >> j & 1 == 1, r >> j & 1 == 1);
                        o.0 += (pj && rj) as u64;
                        o.1 += (pj && !rj) as u64;
                        o.2 += (!pj && rj) as u64;
                    }
                }
                out
            }
        }
    }
}

/// Dice from outcomes: 2TP / (2TP + FP + FN); NaN when the target is in neither map.
pub fn dice(outcome: (u64, u64, u64)) -> f64 {
    let (tp, fp, fn_) = outcome;
    let denominator = 2 * tp + fp + fn_;
    if denominator == 0 {
        f64::NAN
    } else {
        2.0 * tp as f64 / denominator as f64
    }
}

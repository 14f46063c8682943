//! Overlap of two label maps: the confusion matrix over classes in one pass, and Dice and IoU
//! per class from it.

use rayon::prelude::*;

/// Voxel counts by (reference class, predicted class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    /// Row = reference class, column = predicted class.
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// Counts `pred` against `reference` over classes `0..classes`, in parallel chunks.
    ///
    /// # Panics
    /// When the maps differ in length or hold an id >= `classes`.
    pub fn of(pred: &[u16], reference: &[u16], classes: usize) -> ConfusionMatrix {
        ConfusionMatrix::of_annotated(pred, reference, classes, None)
    }

    /// As [`Self::of`], leaving out the voxels whose reference is `ignore` (nnU-Net's
    /// ignore label): unannotated voxels count as no outcome of any class.
    ///
    /// # Panics
    /// When the maps differ in length or hold an id >= `classes` (other than `ignore`).
    pub fn of_annotated(
        pred: &[u16],
        reference: &[u16],
        classes: usize,
        ignore: Option<u16>,
    ) -> ConfusionMatrix {
        assert_eq!(pred.len(), reference.len(), "label maps of different sizes");
        let counts = pred
            .par_chunks(1 << 16)
            .zip(reference.par_chunks(1 << 16))
            .fold(
                || vec![0u64; classes * classes],
                |mut counts, (p, r)| {
                    for (&p, &r) in p.iter().zip(r) {
                        if Some(r) == ignore {
                            continue;
                        }
                        assert!(
                            (p as usize) < classes && (r as usize) < classes,
                            "label id past {classes} classes"
                        );
                        counts[r as usize * classes + p as usize] += 1;
                    }
                    counts
                },
            )
            .reduce(
                || vec![0u64; classes * classes],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                    a
                },
            );
        ConfusionMatrix { classes, counts }
    }

    /// A matrix from counts laid out row = reference class, column = predicted class.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn from_counts(classes: usize, counts: Vec<u64>) -> ConfusionMatrix {
        assert_eq!(counts.len(), classes * classes);
        ConfusionMatrix { classes, counts }
    }

    /// Voxels of reference class `r` predicted as `p`.
    pub fn count(&self, reference: usize, pred: usize) -> u64 {
        self.counts[reference * self.classes + pred]
    }

    /// (true positives, false positives, false negatives) of class `c`.
    pub fn outcomes(&self, c: usize) -> (u64, u64, u64) {
        let tp = self.count(c, c);
        let predicted: u64 = (0..self.classes).map(|r| self.count(r, c)).sum();
        let actual: u64 = (0..self.classes).map(|p| self.count(c, p)).sum();
        (tp, predicted - tp, actual - tp)
    }

    /// Dice of class `c`: 2TP / (2TP + FP + FN); NaN when the class is in neither map (MONAI
    /// leaves such a case out of its means).
    pub fn dice(&self, c: usize) -> f64 {
        let (tp, fp, fn_) = self.outcomes(c);
        let denominator = 2 * tp + fp + fn_;
        if denominator == 0 {
            f64::NAN
        } else {
            2.0 * tp as f64 / denominator as f64
        }
    }

    /// Intersection over union of class `c`; NaN when the class is in neither map.
    pub fn iou(&self, c: usize) -> f64 {
        let (tp, fp, fn_) = self.outcomes(c);
        let denominator = tp + fp + fn_;
        if denominator == 0 {
            f64::NAN
        } else {
            tp as f64 / denominator as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monai_golden_dice_of_the_shifted_cube() {
        let n = 20;
        let cube = |shift: usize| -> Vec<u16> {
            (0..n * n * n)
                .map(|i| {
                    let (x, y, z) = (i % n, (i / n) % n, i / (n * n));
                    let inside = (5 + shift..13 + shift).contains(&x)
                        && (5..13).contains(&y)
                        && (5..13).contains(&z);
                    inside as u16
                })
                .collect()
        };
        let m = ConfusionMatrix::of(&cube(2), &cube(0), 2);
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/metrics/monai_golden.json"
        );
        let golden: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(m.dice(1), golden["dice"].as_f64().unwrap());
        assert_eq!(m.iou(1), 384.0 / 640.0);
        assert_eq!(m.outcomes(1), (384, 128, 128));
    }

    #[test]
    fn ignored_reference_voxels_are_no_outcome_whatever_is_predicted() {
        let reference = [0u16, 1, 1, 9, 9, 2, 0, 9];
        let pred_a = [0u16, 1, 0, 0, 1, 2, 1, 2];
        let pred_b = [0u16, 1, 0, 2, 2, 2, 1, 1];
        let a = ConfusionMatrix::of_annotated(&pred_a, &reference, 3, Some(9));
        let b = ConfusionMatrix::of_annotated(&pred_b, &reference, 3, Some(9));
        assert_eq!(a.counts, b.counts);
        assert_eq!(a.counts.iter().sum::<u64>(), 5);
        assert_eq!(a.outcomes(1), (1, 1, 1));
        assert_eq!(a.dice(1), 0.5);
    }

    #[test]
    fn counts_every_pair_once() {
        let pred = [0u16, 1, 2, 2, 1, 0];
        let reference = [0u16, 1, 1, 2, 2, 2];
        let m = ConfusionMatrix::of(&pred, &reference, 3);
        assert_eq!(
            (0..3)
                .flat_map(|r| (0..3).map(move |p| (r, p)))
                .map(|(r, p)| m.count(r, p))
                .sum::<u64>(),
            6
        );
        assert_eq!(m.count(2, 0), 1);
        assert!((m.dice(2) - 0.4).abs() < 1e-12);
        assert!(ConfusionMatrix::of(&[0], &[0], 2).dice(1).is_nan());
    }
}

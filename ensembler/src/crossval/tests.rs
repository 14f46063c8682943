//! Greedy selection and the clean-ups' choices on hand-made cross-validation outputs.

use super::*;

/// One-hot probabilities of class maps (2 classes) along a line of voxels.
fn one_hot(classes: &[u8]) -> Vec<f32> {
    let bg = classes.iter().map(|&c| (c == 0) as u8 as f32);
    let fg = classes.iter().map(|&c| (c == 1) as u8 as f32);
    bg.chain(fg).collect()
}

/// A cross-validation and the folder its kept files are in (removed with it).
struct Fixture {
    cv: CrossValidation,
    _kept: tempfile::TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = CrossValidation;
    fn deref(&self) -> &CrossValidation {
        &self.cv
    }
}

impl std::ops::DerefMut for Fixture {
    fn deref_mut(&mut self) -> &mut CrossValidation {
        &mut self.cv
    }
}

/// Cross-validation of one case, each algorithm's probabilities kept in a file as
/// training keeps them.
fn cv(reference: &[u8], outputs: &[(&str, Vec<f32>)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let dims = [reference.len(), 1, 1];
    let kept = |(algo, p): &(&str, Vec<f32>)| {
        let file = dir.path().join(format!("{algo}.prob.gz"));
        validation::write(&file, 2, dims, p).unwrap();
        (algo.to_string(), file)
    };
    let cv = CrossValidation {
        ignore: None,
        cases: vec![CaseOutputs {
            reference: reference.to_vec(),
            image: reference.iter().map(|&c| c as f32).collect(),
            dims,
            probabilities: outputs.iter().map(kept).collect(),
        }],
        channels: (2, Decoding::Argmax),
        targets: Targets::Classes(2),
        label_ids: vec![0, 1],
        region_names: Vec::new(),
        algos: outputs
            .iter()
            .map(|(a, _)| (a.to_string(), BTreeMap::new()))
            .collect(),
    };
    Fixture { cv, _kept: dir }
}

/// Two-class probabilities from the foreground's.
fn probabilities(foreground: &[f32]) -> Vec<f32> {
    foreground
        .iter()
        .map(|p| 1.0 - p)
        .chain(foreground.iter().copied())
        .collect()
}

#[test]
fn greedy_adds_an_algorithm_only_while_it_helps() {
    let reference = [0, 1, 1, 1, 1, 0, 0, 0];
    // a and b each miss one voxel that the other is sure of; c is wrong everywhere.
    let a = probabilities(&[0.0, 1.0, 1.0, 1.0, 0.3, 0.0, 0.0, 0.0]);
    let b = probabilities(&[0.0, 0.4, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    let c = probabilities(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let cv = cv(&reference, &[("a", a), ("b", b), ("c", c)]);
    let (mut chosen, dice) = cv.greedy().unwrap();
    chosen.sort();
    assert_eq!(chosen, ["a", "b"]);
    assert_eq!(dice, 1.0);
}

#[test]
fn keeping_the_largest_component_is_kept_only_where_it_raises_the_dice() {
    // A stray voxel far from the structure: removing it helps.
    let reference = [0, 1, 1, 1, 0, 0, 0, 0];
    let stray = one_hot(&[0, 1, 1, 1, 0, 0, 1, 0]);
    let chosen = cv(&reference, &[("a", stray)])
        .postprocessing(&["a".into()])
        .unwrap();
    assert_eq!(chosen.keep_largest, [1]);
    assert!(chosen.remove_small.is_empty(), "{chosen:?}");
    // Two true pieces: keeping one would hurt.
    let reference = [1, 1, 0, 0, 0, 1, 0, 0];
    let exact = one_hot(&reference);
    assert!(
        cv(&reference, &[("a", exact)])
            .postprocessing(&["a".into()])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_crf_is_kept_only_where_it_raises_the_dice() {
    // A bright structure predicted with a hole and a stray voxel: the CRF, guided by the
    // image, mends both (keeping the largest component would mend the stray only).
    let reference: Vec<u8> = (0..40).map(|i| (10..26).contains(&i) as u8).collect();
    let mut foreground: Vec<f32> = reference.iter().map(|&c| [0.2, 0.8][c as usize]).collect();
    (foreground[17], foreground[33]) = (0.4, 0.6);
    let c = cv(&reference, &[("a", probabilities(&foreground))]);
    assert!(c.dice(&["a".into()], &Cleanups::default()).unwrap()[0] < 0.95);
    let chosen = c.postprocessing(&["a".into()]).unwrap();
    assert!(chosen.crf, "{chosen:?}");
    assert_eq!(c.dice(&["a".into()], &chosen).unwrap(), [1.0]);
    // A one-voxel structure in a flat image: smoothing would erase it, so no CRF.
    let reference: Vec<u8> = (0..40).map(|i| (i == 20) as u8).collect();
    let foreground: Vec<f32> = reference.iter().map(|&c| [0.1, 0.7][c as usize]).collect();
    let mut c = cv(&reference, &[("a", probabilities(&foreground))]);
    c.cases[0].image = vec![1.0; 40];
    let refined = Cleanups {
        crf: true,
        ..Cleanups::default()
    };
    assert!(
        c.dice(&["a".into()], &refined).unwrap()[0] < 1.0,
        "the CRF hurts here"
    );
    assert!(!c.postprocessing(&["a".into()]).unwrap().crf);
}

#[test]
fn small_components_are_removed_where_keeping_the_largest_would_hurt() {
    // Two true structures of 4 and 5 voxels, and a stray voxel predicted between them:
    // keeping the largest loses a structure; removing pieces under a voxel count
    // drops only the stray.
    let reference = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0];
    let predicted = [1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0];
    let chosen = cv(&reference, &[("a", one_hot(&predicted))])
        .postprocessing(&["a".into()])
        .unwrap();
    assert!(chosen.keep_largest.is_empty(), "{chosen:?}");
    assert_eq!(chosen.remove_small, [(1, 2)]);
    let c = cv(&reference, &[("a", one_hot(&predicted))]);
    assert_eq!(c.dice(&["a".into()], &chosen).unwrap(), [1.0]);
}

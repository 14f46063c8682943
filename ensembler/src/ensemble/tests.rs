//! Member selection and the ensemble file, against hand-made rankings and ledgers.

use super::*;
use crate::rank::RankedAlgo;

fn algo(name: &str, folds: &[(usize, f64)]) -> RankedAlgo {
    RankedAlgo {
        rank: 0,
        algo: name.into(),
        mean_dice: 0.0,
        dice_per_class: vec![],
        folds: folds.iter().copied().collect(),
        bundles: folds
            .iter()
            .map(|(f, _)| (*f, format!("{name}_{f}")))
            .collect(),
    }
}

#[test]
fn best_by_fold_takes_each_folds_winner_and_best_n_the_top_bundles() {
    let ranking = Ranking {
        score: String::new(),
        algos: vec![
            algo("a", &[(0, 0.8), (1, 0.6)]),
            algo("b", &[(0, 0.7), (1, 0.9)]),
        ],
        left_out: vec![],
    };
    let names = |m: Vec<Member>| -> Vec<String> {
        m.iter().map(|m| m.bundle.display().to_string()).collect()
    };
    assert_eq!(
        names(select(&ranking, Selection::BestByFold)),
        ["bundles/a_0", "bundles/b_1"]
    );
    assert_eq!(
        names(select(&ranking, Selection::BestN { n: 3 })),
        ["bundles/b_1", "bundles/a_0", "bundles/b_0"]
    );
}

#[test]
fn an_edited_ranking_changes_the_members() {
    let dir = tempfile::tempdir().unwrap();
    let w = WorkDir::new(dir.path());
    std::fs::write(
        w.trials(),
        "- {bundle: a_0, algo: a, fold: 0, status: finished, best_dice: 0.8, dice_per_class: [0.8]}\n\
         - {bundle: b_0, algo: b, fold: 0, status: finished, best_dice: 0.9, dice_per_class: [0.9]}\n",
    )
    .unwrap();
    let best = |dir: &Path| {
        let config = write_ensemble(
            dir,
            Selection::BestN { n: 1 },
            Combine::Mean,
            ComputeDevice::Flex,
        )
        .unwrap();
        config.members[0].bundle.display().to_string()
    };
    assert_eq!(best(dir.path()), "bundles/b_0");
    assert!(w.ranking().is_file(), "ranked when missing");
    // The user drops algorithm b from the ranking: it is no longer chosen.
    let mut ranking: Ranking =
        serde_yaml::from_str(&std::fs::read_to_string(w.ranking()).unwrap()).unwrap();
    ranking.algos.retain(|a| a.algo != "b");
    std::fs::write(w.ranking(), serde_yaml::to_string(&ranking).unwrap()).unwrap();
    assert_eq!(best(dir.path()), "bundles/a_0");
}

#[test]
fn a_ranking_with_no_finished_trial_is_a_named_error_for_every_selection() {
    let dir = tempfile::tempdir().unwrap();
    let w = WorkDir::new(dir.path());
    std::fs::write(
        w.trials(),
        "- {bundle: dynunet_0, algo: dynunet, fold: 0, status: failed, note: out of memory}\n\
         - {bundle: segresnet_0, algo: segresnet, fold: 0, status: partial, best_dice: 0.1}\n",
    )
    .unwrap();
    for selection in [Selection::Greedy, Selection::BestN { n: 2 }] {
        let error = write_ensemble(dir.path(), selection, Combine::Mean, ComputeDevice::Flex)
            .err()
            .expect("nothing to ensemble");
        let message = error.to_string();
        assert!(message.contains("ranking.yaml"), "{message}");
        assert!(
            message.contains("dynunet_0 (failed)") && message.contains("segresnet_0 (partial)"),
            "{message}"
        );
        assert!(!w.ensemble().exists());
    }
}

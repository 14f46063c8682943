//! `autoseg tune` on phantoms: ASHA stops most trials early, so a budget that holds about
//! one full-length run tries many configurations; the search ends within its budget and
//! says whether it beat the template's values; the best trial becomes the fold's bundle,
//! which `autoseg train` then finishes.

mod common;

use std::time::Instant;

#[test]
fn a_short_budget_tries_more_trials_than_it_holds_at_full_length() {
    let (_dir, work) = common::analyzed_phantoms(6);
    let w = work.to_str().unwrap();
    common::generate(
        &work,
        "dynunet",
        "0",
        &[
            "network.filters=[4, 8, 16]",
            "num_epochs=9",
            "iterations_per_epoch=3",
            "validation.every=9",
        ],
    );
    let bundle = work.join("bundles/dynunet_0");
    assert!(bundle.join("search_space.yaml").is_file());

    let budget = 45.0;
    let started = Instant::now();
    let said = common::run_ok(&[
        "tune",
        "-w",
        w,
        "--time-budget",
        &budget.to_string(),
        "--first-rung",
        "1",
        "--seed",
        "3",
    ]);
    let took = started.elapsed().as_secs_f64();
    assert!(
        took <= budget * 1.1,
        "took {took:.1} s of a {budget} s budget:\n{said}"
    );
    let study = common::read_yaml(&work.join("tuning/dynunet_0/study.yaml"));
    assert_eq!(study["rungs"], serde_json::json!([1, 3, 9]), "{study}");
    let outcome = &study["outcome"];
    let trials = outcome["trials"].as_f64().unwrap();
    let full_length = outcome["full_length_trials_in_budget"].as_f64().unwrap();
    assert!(
        trials > full_length,
        "{trials} trials, {full_length} at full length:\n{said}"
    );
    assert!(outcome["stopped_early"].as_u64().unwrap() >= 1, "{study}");
    let verdict = outcome["verdict"].as_str().unwrap();
    assert!(
        verdict.contains("beats") || verdict.contains("did not beat"),
        "{verdict}"
    );
    assert!(said.contains(verdict), "{said}");
    // Each trial is a bundle of its own; trial 0 holds the template's values.
    let first = &study["trials"][0];
    assert_eq!(
        first["values"]["network.filters"],
        serde_json::json!([4, 8, 16])
    );
    assert!(
        work.join("tuning/dynunet_0/trial_001/configs/hyper_parameters.yaml")
            .is_file()
    );

    // The best trial is now the fold's bundle, its values recorded as tuned.
    let best = outcome["best"].as_str().unwrap();
    let derivation = std::fs::read_to_string(bundle.join("derivation.yaml")).unwrap();
    assert!(
        derivation.contains(&format!("autoseg tune (best: {best})")),
        "{derivation}"
    );
    let best_trial = study["trials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == best)
        .unwrap();
    let config = common::read_yaml(&bundle.join("configs/hyper_parameters.yaml"));
    assert_eq!(
        config["learning_rate"],
        best_trial["values"]["learning_rate"]
    );
    // ... checkpoint included, so `autoseg train` finishes it from where the trial stopped
    // (or has nothing left to do when the best went the whole schedule).
    let best_epochs = best_trial["epochs"].as_u64().unwrap() as usize;
    assert_eq!(common::epochs_done(&bundle), best_epochs);
    assert!(
        bundle.join("model/last").is_dir(),
        "the trial's checkpoint came along"
    );
    let trained = common::run_ok(&["train", "-w", w]);
    assert!(trained.contains("1 finished"), "{trained}");
    assert_eq!(common::epochs_done(&bundle), 9);
}

//! The planner's rule on Task04's calibration (2 cores, flex) and variants of it.

use super::*;

/// Task04 as calibration measured it on 2 cores (AMD EPYC Zen 4, flex with the AVX-512
/// direct convolutions, bf16 by default there): dynunet 16-128 and segresnet.
fn task04() -> Vec<Calibration> {
    let template = |algo: &str, step_seconds, validation_seconds| Calibration {
        algo: algo.into(),
        parameters: 1,
        step_seconds,
        steps_timed: 5,
        validation_seconds,
        case_seconds: validation_seconds / 42.0,
        mirror_passes: 8,
        steps_per_validation: 200,
        schedule_steps: 250_000,
    };
    vec![
        template("dynunet", 0.43, 4.0),
        template("segresnet", 1.08, 6.3),
    ]
}

fn request(time_budget: Option<f64>) -> Request {
    Request {
        time_budget,
        devices: vec!["cpu".into()],
        cpu_only: true,
        algos: vec![],
        folds: vec![],
        mirroring_forced: false,
    }
}

fn facts() -> Facts {
    Facts {
        num_folds: 5,
        testing_cases: 130,
        report_cases: 3,
        spent_seconds: 30.0,
    }
}

fn plan(request: &Request) -> RunPlan {
    decide(request, &facts(), &task04())
}

#[test]
fn ninety_minutes_train_one_model_past_its_plateau_within_the_budget() {
    let p = plan(&request(Some(5400.0)));
    assert_eq!(
        (p.algos.as_slice(), p.folds.as_slice()),
        (&["dynunet".into()][..], &[0][..])
    );
    assert!(p.steps_per_model[0].1 >= STEPS_TO_CONVERGE, "{p:?}");
    assert!(
        p.expected_seconds <= 5400.0 * (1.0 - SAFETY_SHARE) + 1e-6,
        "{p:?}"
    );
    assert!(p.mirroring);
    assert!(
        p.reasons
            .iter()
            .any(|r| r.contains("2 model(s) would leave each short")),
        "{p:?}"
    );
}

#[test]
fn fifteen_minutes_still_train_one_model_and_say_it_is_short() {
    let p = plan(&request(Some(900.0)));
    assert_eq!(p.folds, [0]);
    assert!(p.steps_per_model[0].1 < STEPS_TO_CONVERGE);
    assert!(p.steps_per_model[0].1 > 500, "{p:?}");
    assert!(p.expected_seconds <= 900.0, "{p:?}");
    assert!(p.reasons.iter().any(|r| r.contains("short of")), "{p:?}");
}

#[test]
fn longer_budgets_add_folds_then_templates() {
    let eight_hours = plan(&request(Some(8.0 * 3600.0)));
    assert_eq!(eight_hours.algos, ["dynunet"]);
    assert_eq!(eight_hours.folds, [0, 1, 2, 3, 4]);
    let three_days = plan(&request(Some(3.0 * 86400.0)));
    assert_eq!(three_days.algos, ["dynunet", "segresnet"]);
    assert_eq!(three_days.folds, [0, 1, 2, 3, 4]);
    for budget in [900.0, 1800.0, 5400.0, 8.0 * 3600.0, 3.0 * 86400.0] {
        let p = plan(&request(Some(budget)));
        assert!(p.expected_seconds <= budget, "{budget}: {p:?}");
    }
}

#[test]
fn forced_templates_and_folds_are_kept_and_said() {
    let mut r = request(Some(5400.0));
    r.algos = vec!["segresnet".into()];
    r.folds = vec![1, 2];
    let forced = decide(&r, &facts(), &task04()[1..]);
    assert_eq!(forced.algos, ["segresnet"]);
    assert_eq!(forced.folds, [1, 2]);
    assert_eq!(forced.forced.len(), 2, "{:?}", forced.forced);
    let share = forced.seconds_per_model.unwrap();
    assert!(
        (share * 2.0 - 5400.0).abs() < 900.0,
        "two rounds share it: {share}"
    );
}

#[test]
fn without_a_budget_a_gpu_trains_every_schedule_and_a_cpu_gets_the_plateau_rule() {
    let mut gpu = request(None);
    gpu.cpu_only = false;
    let p = plan(&gpu);
    assert_eq!(p.budget_seconds, None);
    assert_eq!(p.seconds_per_model, None);
    assert_eq!((p.algos.len(), p.folds.len()), (2, 5));
    assert_eq!(p.steps_per_model[0].1, 250_000);
    assert!(p.expected_seconds > 250_000.0 * 0.43 * 5.0, "{p:?}");

    let cpu = plan(&request(None));
    let budget = cpu.budget_seconds.expect("a default budget on CPU cores");
    assert!(
        cpu.budget_rule.contains("no --time-budget"),
        "{}",
        cpu.budget_rule
    );
    assert_eq!(
        (cpu.algos.as_slice(), cpu.folds.len()),
        (&["dynunet".into()][..], 5)
    );
    assert!(cpu.steps_per_model[0].1 >= STEPS_TO_CONVERGE);
    assert!(budget < 8.0 * 3600.0, "a night at most: {budget}");
}

#[test]
fn short_schedules_are_not_limited_by_a_default_budget() {
    let mut few_steps = task04();
    few_steps.iter_mut().for_each(|c| c.schedule_steps = 24);
    let mut r = request(None);
    r.algos = vec!["dynunet".into()];
    r.folds = vec![0, 1];
    let p = decide(&r, &facts(), &few_steps[..1]);
    assert_eq!(p.budget_seconds, None);
    assert_eq!(p.seconds_per_model, None);
    assert_eq!(p.steps_per_model, [("dynunet".to_string(), 24)]);
}

/// The plan of 8 hours for both templates (forced) whose schedules end after `steps`,
/// and their calibration.
fn both_templates_scheduled_for(steps: usize) -> (RunPlan, Vec<Calibration>) {
    let mut few_steps = task04();
    few_steps.iter_mut().for_each(|c| c.schedule_steps = steps);
    let mut r = request(Some(8.0 * 3600.0));
    r.algos = vec!["dynunet".into(), "segresnet".into()];
    (decide(&r, &facts(), &few_steps), few_steps)
}

#[test]
fn a_schedule_shorter_than_the_plateau_is_said_as_such() {
    let (p, _) = both_templates_scheduled_for(2);
    let why = p.reasons.last().expect("a reason");
    assert!(
        why.contains("the end of their schedule (2 / 2 steps") && why.contains("about 2 / 2 steps"),
        "{why}"
    );
    assert!(
        !why.contains("steps of the learning curve's plateau"),
        "{why}"
    );
}

#[test]
fn expected_seconds_add_each_template_models_at_its_own_price() {
    let (p, few_steps) = both_templates_scheduled_for(1);
    let folds = 5.0;
    let models: f64 = few_steps
        .iter()
        .map(|c| folds * c.model_seconds(1, p.mirroring))
        .sum();
    let after = after_training(
        Choice {
            templates: 2,
            folds: 5,
        },
        &facts(),
        &few_steps,
        p.mirroring,
    );
    let expected = facts().spent_seconds + models + after;
    assert!(
        (p.expected_seconds - expected).abs() < 1e-6,
        "{expected}: {p:?}"
    );
    assert_eq!(training_seconds(&[10.0, 30.0], 5, 2), 100.0);
    assert_eq!(
        training_seconds(&[10.0, 300.0], 1, 4),
        300.0,
        "never under the longest"
    );
}

#[test]
fn mirroring_is_turned_off_when_its_passes_outweigh_their_share() {
    // BraTS-like: a case takes minutes, every pass counts.
    let mut slow = task04();
    slow.iter_mut().for_each(|c| {
        c.case_seconds = 70.0;
        c.validation_seconds = 70.0;
    });
    let p = decide(&request(Some(3600.0)), &facts(), &slow);
    assert!(!p.mirroring, "{p:?}");
    assert!(
        p.reasons.iter().any(|r| r.contains("mirroring off")),
        "{p:?}"
    );
    let mut forced = request(Some(3600.0));
    forced.mirroring_forced = true;
    assert!(decide(&forced, &facts(), &slow).mirroring);
}

//! The planner's rule: the most models whose every member still reaches its learning
//! curve's plateau within the budget, grown a fold at a time for the first template, then a
//! template (all folds) at a time.

use super::{Calibration, Facts, Request, RunPlan, duration};

/// Steps a model needs before another fold or template pays. Measured on Task04 with the
/// CPU recipe (dynunet 16-128, batch 2, AdamW 3e-3 with a cosine decay over the budget,
/// `bench/run_task04.sh`). A run's curve flattens as its decay ends wherever that is, so
/// what counts is where runs end: fold-0 cross-validation Dice 0.864 for a run ending after
/// 2,000 steps (32-256 channels), 0.881-0.882 after 5,500-5,700 (0.012 a doubling of the
/// steps), 0.885 after 9,650 (0.004 a doubling). A second model leaves every model's
/// held-out Dice as it is and brings an ensemble member: nnU-Net's 5-fold ensemble gains
/// about 0.005 over one model, and an ensemble's gain grows as `1 - 1/members` (the
/// members' variance averaged away), so a second member brings about 0.003 (0.005 x
/// 0.5 / 0.8). It pays where a doubling of the steps brings less than that: past the 0.004
/// measured up to 9,650 steps, about 10,000. (Earlier rules: 4,000 steps, read off one
/// run's flattening decay; 6,000, which gave one more member the 5-fold ensemble's gain.)
pub const STEPS_TO_CONVERGE: usize = 10_000;

/// Test-time mirroring is kept while the predictions it multiplies (each model's final
/// validation, the testing cases, the report's) take under this share of the budget.
/// nnU-Net's 8 mirrored passes gain about 0.005 Dice on average; on BraTS at 2 cores they
/// took 561 s a case.
pub const MIRROR_SHARE: f64 = 0.10;

/// Share of the budget kept unplanned for what timing cannot foresee (a shared machine, a
/// slower epoch): runs are planned to end by 95 % of their budget.
pub const SAFETY_SHARE: f64 = 0.05;

/// How many templates (a prefix of the candidates) on how many folds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Choice {
    templates: usize,
    folds: usize,
}

impl Calibration {
    fn passes(&self, mirrored: bool) -> f64 {
        if mirrored {
            self.mirror_passes.max(1) as f64
        } else {
            1.0
        }
    }

    /// Steps this template's models need: the plateau's, or the configured schedule's
    /// when shorter.
    fn needed_steps(&self) -> usize {
        STEPS_TO_CONVERGE.min(self.schedule_steps.max(1))
    }

    /// Seconds a model of `steps` steps takes: the steps, a validation every
    /// `steps_per_validation` and one at the end, and the final (mirrored) prediction of
    /// the fold's validation cases that cross-validation keeps.
    fn model_seconds(&self, steps: usize, mirrored: bool) -> f64 {
        let validations = (steps / self.steps_per_validation.max(1) + 1) as f64;
        steps as f64 * self.step_seconds
            + (validations + self.passes(mirrored)) * self.validation_seconds
    }

    /// The most steps a model makes in `seconds` ([`Self::model_seconds`] inverted).
    fn steps_within(&self, seconds: f64, mirrored: bool) -> usize {
        let fixed = (1.0 + self.passes(mirrored)) * self.validation_seconds;
        let per_step =
            self.step_seconds + self.validation_seconds / self.steps_per_validation.max(1) as f64;
        // The tolerance keeps a budget made for n steps (the default's) worth n steps.
        ((seconds - fixed) / per_step.max(1e-9) + 1e-6)
            .max(0.0)
            .floor() as usize
    }
}

/// What a choice costs and makes within a budget.
struct Costed {
    choice: Choice,
    /// Seconds each model may train.
    share: f64,
    /// Steps each template's models make.
    steps: Vec<usize>,
    /// Every model reaches its needed steps.
    converges: bool,
}

/// The plan for `request` on these `candidates` (suited templates, best first; the forced
/// ones when `--algos` was given).
pub fn decide(request: &Request, facts: &Facts, candidates: &[Calibration]) -> RunPlan {
    let slots = request.devices.len().max(1);
    let choices = choices(request, facts, candidates.len());
    let (budget, budget_rule) = budget(request, facts, candidates, &choices, slots);
    let mut reasons = Vec::new();
    let plan = match budget {
        None => {
            reasons.push(
                "each model trains its template's own schedule, as nnU-Net and Auto3DSeg do".into(),
            );
            Planned {
                choice: *choices.last().expect("at least one choice"),
                share: None,
                mirroring: true,
            }
        }
        Some(total) => {
            let within = Within {
                total,
                facts,
                candidates,
                choices: &choices,
                slots,
            };
            within.best(request.mirroring_forced, &mut reasons)
        }
    };
    plan.into_plan(
        request,
        facts,
        candidates,
        (budget, budget_rule),
        reasons,
        forced(request),
    )
}

/// What the user fixed by flags, in words.
fn forced(request: &Request) -> Vec<String> {
    let mut forced = Vec::new();
    if !request.algos.is_empty() {
        forced.push(format!("templates {} (--algos)", request.algos.join(", ")));
    }
    if !request.folds.is_empty() {
        forced.push(format!("folds {:?} (--folds)", request.folds));
    }
    if request.mirroring_forced {
        forced.push("test-time mirroring (--set inference.mirror_axes)".into());
    }
    forced
}

/// A budget of `total` seconds and what it can be spent on.
struct Within<'a> {
    total: f64,
    facts: &'a Facts,
    candidates: &'a [Calibration],
    choices: &'a [Choice],
    slots: usize,
}

impl Within<'_> {
    /// The choice that makes the most of the budget, test-time mirroring off (unless
    /// forced) where its passes would cost over [`MIRROR_SHARE`] of it; why, into
    /// `reasons`.
    fn best(&self, mirroring_forced: bool, reasons: &mut Vec<String>) -> Planned {
        let mut mirroring = true;
        let mut best = self.pick(mirroring);
        let mirror_cost = mirror_seconds(&best, self.facts, self.candidates);
        if !mirroring_forced && mirror_cost > MIRROR_SHARE * self.total {
            mirroring = false;
            reasons.push(format!(
                "test-time mirroring off: its passes would take {} of the {} budget (over {:.0} %)",
                duration(mirror_cost),
                duration(self.total),
                MIRROR_SHARE * 100.0
            ));
            best = self.pick(mirroring);
        }
        reasons.push(why(&best, self.candidates, self.choices, self.total));
        Planned {
            choice: best.choice,
            share: Some(best.share),
            mirroring,
        }
    }

    /// The choice with the most models that all converge within the budget, else the
    /// smallest.
    fn pick(&self, mirrored: bool) -> Costed {
        let Within {
            total,
            facts,
            candidates,
            choices,
            slots,
        } = *self;
        let costed: Vec<Costed> = (choices.iter())
            .map(|&c| cost(c, total, facts, candidates, slots, mirrored))
            .collect();
        let mut costed = costed.into_iter();
        let first = costed.next().expect("at least one choice");
        costed.rfind(|c| c.converges).unwrap_or(first)
    }
}

/// The choices open to the planner, fewest models first: folds of the first template one
/// by one, then one more template on every fold at a time; what the user forced is fixed.
fn choices(request: &Request, facts: &Facts, candidates: usize) -> Vec<Choice> {
    let num_folds = facts.num_folds.max(1);
    let fold_counts: Vec<usize> = match request.folds.len() {
        0 => (1..=num_folds).collect(),
        n => vec![n],
    };
    let template_counts: Vec<usize> = match request.algos.len() {
        0 => (1..=candidates.max(1)).collect(),
        n => vec![n],
    };
    let mut out = Vec::new();
    for &templates in &template_counts {
        for &folds in &fold_counts {
            // A second template is ranked against the first on the same folds: all of them.
            if templates == 1 || folds == *fold_counts.last().expect("a fold count") {
                out.push(Choice { templates, folds });
            }
        }
    }
    out
}

/// The budget planned for and its rule: the one given; else, on CPU cores alone, what the
/// default choice needs to converge; else (a GPU) none.
fn budget(
    request: &Request,
    facts: &Facts,
    candidates: &[Calibration],
    choices: &[Choice],
    slots: usize,
) -> (Option<f64>, String) {
    if let Some(given) = request.time_budget {
        return (Some(given), "--time-budget".into());
    }
    if !request.cpu_only {
        return (
            None,
            "no --time-budget on a GPU: each template's own schedule (nnU-Net's 1000 x 250 \
             steps)"
                .into(),
        );
    }
    // The default on CPU cores: the first template's cross-validation (or the forced
    // choice), each model trained to its plateau.
    let choice = *(choices.iter())
        .rfind(|c| c.templates == choices[0].templates)
        .expect("at least one choice");
    let used = &candidates[..choice.templates.min(candidates.len())];
    // Models whose schedule ends before the plateau are not limited by a default budget.
    if candidates
        .iter()
        .all(|c| c.schedule_steps < STEPS_TO_CONVERGE)
    {
        return (
            None,
            format!(
                "no --time-budget, and every schedule is shorter than {STEPS_TO_CONVERGE} \
                 steps: each model trains its own"
            ),
        );
    }
    let models: Vec<f64> = (used.iter())
        .map(|c| c.model_seconds(c.needed_steps(), true))
        .collect();
    let total = (facts.spent_seconds
        + training_seconds(&models, choice.folds, slots)
        + after_training(choice, facts, candidates, true))
        / (1.0 - SAFETY_SHARE);
    let rule = format!(
        "no --time-budget on CPU cores: what {} fold(s) of {} need to reach the learning \
         curve's plateau ({STEPS_TO_CONVERGE} steps a model), not nnU-Net's 250,000 steps",
        choice.folds,
        names(used)
    );
    (Some(total), rule)
}

fn cost(
    choice: Choice,
    total: f64,
    facts: &Facts,
    candidates: &[Calibration],
    slots: usize,
    mirrored: bool,
) -> Costed {
    let used = &candidates[..choice.templates.min(candidates.len())];
    let rounds = (choice.templates * choice.folds).div_ceil(slots) as f64;
    let left = total * (1.0 - SAFETY_SHARE)
        - facts.spent_seconds
        - after_training(choice, facts, candidates, mirrored);
    let share = (left / rounds).max(0.0);
    let steps: Vec<usize> = used
        .iter()
        .map(|c| c.steps_within(share, mirrored))
        .collect();
    let converges = used.iter().zip(&steps).all(|(c, &s)| s >= c.needed_steps());
    Costed {
        choice,
        share,
        steps,
        converges,
    }
}

/// Seconds the training of `folds` models of each template takes, each template's model
/// taking `models[t]` seconds, on `slots` devices side by side: their sum shared by the
/// devices, and never under the longest model. (Pricing each round of models at its
/// longest counted a mixed plan's short models at the long one's price: on the 40-class
/// phantoms, five folds of dynunet beside segresnet's, 4.3 h expected.)
fn training_seconds(models: &[f64], folds: usize, slots: usize) -> f64 {
    let longest = models.iter().copied().fold(0.0, f64::max);
    let sum: f64 = models.iter().map(|m| m * folds as f64).sum();
    (sum / slots.max(1) as f64).max(longest)
}

/// Seconds of what follows training: every model predicts each testing case and each of
/// the report's cases (the ensemble's members are at most every model).
fn after_training(
    choice: Choice,
    facts: &Facts,
    candidates: &[Calibration],
    mirrored: bool,
) -> f64 {
    let cases = (facts.testing_cases + facts.report_cases) as f64;
    let used = &candidates[..choice.templates.min(candidates.len())];
    (used.iter())
        .map(|c| choice.folds as f64 * cases * c.case_seconds * c.passes(mirrored))
        .sum()
}

/// Seconds test-time mirroring adds to a costed choice: its passes after training, and in
/// each model's final validation.
fn mirror_seconds(costed: &Costed, facts: &Facts, candidates: &[Calibration]) -> f64 {
    let c = costed.choice;
    let used = &candidates[..c.templates.min(candidates.len())];
    let finals: f64 = (used.iter())
        .map(|t| c.folds as f64 * (t.passes(true) - 1.0) * t.validation_seconds)
        .sum();
    after_training(c, facts, candidates, true) - after_training(c, facts, candidates, false)
        + finals
}

/// Why the choice was made, in a sentence.
fn why(best: &Costed, candidates: &[Calibration], choices: &[Choice], total: f64) -> String {
    let c = best.choice;
    let used = &candidates[..c.templates.min(candidates.len())];
    let steps: Vec<String> = (best.steps.iter().zip(used))
        .map(|(&s, t)| s.min(t.schedule_steps).to_string())
        .collect();
    let each = format!(
        "{} a model, about {} steps",
        duration(best.share),
        steps.join(" / ")
    );
    let (needed, names) = (needed(used), names(used));
    if !best.converges {
        return format!(
            "{} of budget leaves even one model short of {needed} ({each}): one model of \
             {names} on fold 0; a longer budget would gain Dice",
            duration(total)
        );
    }
    let next = choices
        .iter()
        .find(|n| n.templates * n.folds > c.templates * c.folds);
    let more = match next {
        Some(n) => format!(
            "; {} model(s) would leave each short of them",
            n.templates * n.folds
        ),
        None => String::new(),
    };
    format!(
        "{} model(s) of {names} ({} fold(s)) each reach {needed} ({each}){more}",
        c.templates * c.folds,
        c.folds
    )
}

/// The steps the models of `used` need, in words: the learning curve's plateau, or a
/// schedule's end where that comes first (a schedule the user shortened).
fn needed(used: &[Calibration]) -> String {
    if used.iter().all(|c| c.needed_steps() == STEPS_TO_CONVERGE) {
        return format!("the {STEPS_TO_CONVERGE} steps of the learning curve's plateau");
    }
    let steps: Vec<String> = used.iter().map(|c| c.needed_steps().to_string()).collect();
    format!(
        "the end of their schedule ({} steps; the plateau's {STEPS_TO_CONVERGE} where that \
         comes first)",
        steps.join(" / ")
    )
}

fn names(used: &[Calibration]) -> String {
    let names: Vec<&str> = used.iter().map(|c| c.algo.as_str()).collect();
    names.join(" + ")
}

/// A choice made, before it is written out as a plan.
struct Planned {
    choice: Choice,
    share: Option<f64>,
    mirroring: bool,
}

impl Planned {
    fn into_plan(
        self,
        request: &Request,
        facts: &Facts,
        candidates: &[Calibration],
        (budget_seconds, budget_rule): (Option<f64>, String),
        reasons: Vec<String>,
        forced: Vec<String>,
    ) -> RunPlan {
        let used = &candidates[..self.choice.templates.min(candidates.len())];
        let algos: Vec<String> = match request.algos.is_empty() {
            true => used.iter().map(|c| c.algo.clone()).collect(),
            false => request.algos.clone(),
        };
        let folds: Vec<usize> = match request.folds.is_empty() {
            true => (0..self.choice.folds).collect(),
            false => request.folds.clone(),
        };
        let steps_per_model: Vec<(String, usize)> = (used.iter())
            .map(|c| {
                let steps = self.share.map_or(c.schedule_steps, |s| {
                    c.steps_within(s, self.mirroring).min(c.schedule_steps)
                });
                (c.algo.clone(), steps)
            })
            .collect();
        let models: Vec<f64> = (used.iter().zip(&steps_per_model))
            .map(|(c, (_, steps))| c.model_seconds(*steps, self.mirroring))
            .collect();
        let slots = request.devices.len().max(1);
        let expected = facts.spent_seconds
            + training_seconds(&models, folds.len(), slots)
            + after_training(self.choice, facts, candidates, self.mirroring);
        RunPlan {
            request: request.clone(),
            facts: facts.clone(),
            budget_seconds,
            budget_rule,
            algos,
            folds,
            seconds_per_model: self.share,
            steps_per_model,
            mirroring: self.mirroring,
            expected_seconds: expected,
            calibration: candidates.to_vec(),
            reasons,
            forced,
        }
    }
}

#[cfg(test)]
mod tests;

//! The report's plan section: what `autoseg run` planned for its budget (`W/plan.yaml`),
//! each candidate's calibration, and why.

use std::path::Path;

use autoseg_datasets::WorkDir;
use autoseg_templates::planner::{RunPlan, duration};

use super::html::{escape, number, para, table};
use super::{ReportError, unreadable};

/// The plan, its calibration table and its reasons; nothing when no run planned (stages
/// run one by one have no plan, and lack nothing).
pub fn plan_section(work_dir: &Path) -> Result<String, ReportError> {
    let path = WorkDir::new(work_dir).plan();
    let Some(plan) = RunPlan::read(&path).map_err(|e| unreadable(&path, e.reason))? else {
        return Ok(String::new());
    };
    let mut html = String::from("<h2>Plan</h2>\n");
    let budget = match plan.budget_seconds {
        Some(s) => format!("{} ({})", duration(s), plan.budget_rule),
        None => format!("none ({})", plan.budget_rule),
    };
    let each = plan
        .seconds_per_model
        .map_or("its configured schedule".into(), duration);
    html.push_str(&para(&format!(
        "Budget: {budget}. Trained {} on fold(s) {:?}: {} model(s), {each} each; test-time \
         mirroring {}; expected {} in all.",
        plan.algos.join(", "),
        plan.folds,
        plan.models(),
        plan.mirroring_words(),
        duration(plan.expected_seconds)
    )));
    let rows: Vec<Vec<String>> = (plan.calibration.iter())
        .map(|c| {
            let steps = (plan.steps_per_model.iter())
                .find(|(algo, _)| *algo == c.algo)
                .map_or("not trained".into(), |(_, s)| s.to_string());
            vec![
                c.algo.clone(),
                c.parameters.to_string(),
                number(c.step_seconds),
                number(c.validation_seconds),
                steps,
            ]
        })
        .collect();
    let headers = [
        "template",
        "parameters",
        "s a step",
        "s a validation",
        "planned steps a model",
    ];
    html.push_str(&table(&headers, &rows));
    let said: Vec<String> = (plan.forced.iter().map(|f| format!("forced: {f}")))
        .chain(plan.reasons.iter().cloned())
        .map(|line| format!("<li>{}</li>", escape(&line)))
        .collect();
    html.push_str(&format!("<ul>\n{}\n</ul>\n", said.join("\n")));
    Ok(html)
}

#[cfg(test)]
mod tests {
    use autoseg_templates::planner::{Calibration, Facts, Request, decide};

    use super::*;

    #[test]
    fn the_plan_is_shown_with_its_calibration_and_reasons_and_absent_when_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(plan_section(dir.path()).unwrap(), "");
        let request = Request {
            time_budget: Some(5400.0),
            devices: vec!["cpu".into()],
            cpu_only: true,
            algos: vec![],
            folds: vec![],
            mirroring_forced: false,
        };
        let facts = Facts {
            num_folds: 5,
            testing_cases: 0,
            report_cases: 3,
            spent_seconds: 10.0,
        };
        let calibration = Calibration {
            algo: "dynunet".into(),
            parameters: 1_401_481,
            step_seconds: 0.74,
            steps_timed: 5,
            validation_seconds: 5.5,
            case_seconds: 0.13,
            mirror_passes: 8,
            steps_per_validation: 200,
            schedule_steps: 250_000,
        };
        let plan = decide(&request, &facts, &[calibration]);
        plan.write(&WorkDir::new(dir.path()).plan()).unwrap();
        let html = plan_section(dir.path()).unwrap();
        assert!(html.contains("<h2>Plan</h2>"), "{html}");
        assert!(
            html.contains("1401481") && html.contains("0.7400"),
            "{html}"
        );
        assert!(html.contains("learning curve"), "{html}");
    }
}

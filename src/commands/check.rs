//! `autoseg check`: the dataset integrity check, as a table or JSON.

use std::process::ExitCode;
use std::time::Instant;

use crate::cli::CheckArgs;
use crate::pipeline;

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let (dataset, task) = pipeline::open(&args.dataset)?;
    let started = Instant::now();
    let report = pipeline::check(&dataset, task.as_ref());
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["seconds"] = seconds.into();
        value["data_root"] = dataset.root.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        pipeline::print_report(&report, &dataset.root, seconds);
    }
    Ok(if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

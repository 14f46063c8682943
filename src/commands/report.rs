//! `autoseg report`: one HTML page of everything a work dir holds.

use std::process::ExitCode;

use autoseg_ensembler::report::{ReportOptions, write_report};

use crate::cli::ReportArgs;

pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let options = ReportOptions {
        overlays: args.overlays,
        device: args.device.parse()?,
    };
    let _lock = crate::pipeline::lock_work_dir(&args.work_dir)?;
    let path = write_report(&args.work_dir, &options)?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

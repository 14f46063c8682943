//! `autoseg ensemble`: the ensemble's members and how they combine, from the ranking.

use autoseg_datasets::WorkDir;
use std::process::ExitCode;

use autoseg_ensembler::ensemble::{Combine, Selection, write_ensemble};

use crate::cli::{CombineArg, EnsembleArgs, SelectionArg};
use crate::pipeline;

pub fn run(args: &EnsembleArgs) -> anyhow::Result<ExitCode> {
    let selection = match args.selection {
        SelectionArg::BestByFold => Selection::BestByFold,
        SelectionArg::BestN => Selection::BestN { n: args.n.max(1) },
        SelectionArg::Greedy => Selection::Greedy,
    };
    let combine = match args.combine {
        CombineArg::Mean => Combine::Mean,
        CombineArg::Vote => Combine::Vote,
    };
    let _lock = crate::pipeline::lock_work_dir(&args.work_dir)?;
    let config = write_ensemble(&args.work_dir, selection, combine, args.device.parse()?)?;
    pipeline::print_choice(&config);
    println!(
        "{:?} of {} member(s); wrote {}",
        config.combine,
        config.members.len(),
        WorkDir::new(&args.work_dir).ensemble().display()
    );
    Ok(ExitCode::SUCCESS)
}

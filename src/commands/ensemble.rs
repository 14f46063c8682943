//! `autoseg ensemble`: the ensemble's members and how they combine, from the ranking.

use autoseg_datasets::WorkDir;
use std::process::ExitCode;

use autoseg_ensembler::ensemble::{Combine, EnsembleConfig, Selection, write_ensemble};

use crate::cli::{CombineArg, EnsembleArgs, SelectionArg};

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
    let config = write_ensemble(&args.work_dir, selection, combine, args.device.parse()?)?;
    print_choice(&config);
    println!(
        "{:?} of {} member(s); wrote {}",
        config.combine,
        config.members.len(),
        WorkDir::new(&args.work_dir).ensemble().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The members and what cross-validation measured and kept, a line each.
pub fn print_choice(config: &EnsembleConfig) {
    for m in &config.members {
        println!(
            "  member {} (validation Dice {:.4})",
            m.bundle.display(),
            m.dice
        );
    }
    if let Some(dice) = config.cross_validation_dice {
        println!(
            "  cross-validation Dice {dice:.4}, {}",
            config.describe_cleanups()
        );
        let per_class: Vec<String> = config
            .cross_validation_dice_per_class
            .iter()
            .map(|(label, dice)| format!("label {label}: {dice:.4}"))
            .collect();
        println!("  per class: {}", per_class.join(", "));
    }
}

//! One module per command.

mod analyze;
mod check;
mod demo;
mod devices;
mod ensemble;
mod evaluate;
mod export;
mod generate;
mod inspect;
mod phantom;
mod predict;
mod rank;
mod report;
mod run;
mod train;
mod tune;

use std::process::ExitCode;

use crate::cli::Command;

/// Runs a parsed command; the exit code says whether it found problems.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo(args) => demo::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Analyze(args) => analyze::run(&args),
        Command::Generate(args) => generate::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Ensemble(args) => ensemble::run(&args),
        Command::Rank(args) => rank::run(&args),
        Command::Tune(args) => tune::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Phantom(args) => phantom::run(&args),
        Command::Devices => devices::run(),
    }
}

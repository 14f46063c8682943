//! `autoseg rank`: the work dir's algorithms by validation Dice, as a table and in
//! `ranking.yaml`.

use std::process::ExitCode;

use autoseg_datasets::WorkDir;
use autoseg_ensembler::rank::write_ranking;

use crate::cli::RankArgs;

pub fn run(args: &RankArgs) -> anyhow::Result<ExitCode> {
    let _lock = crate::pipeline::lock_work_dir(&args.work_dir)?;
    let ranking = write_ranking(&args.work_dir)?;
    println!(
        "{:<5} {:<14} {:>9}  {:<24} folds",
        "rank", "algorithm", "mean Dice", "per class"
    );
    for a in &ranking.algos {
        let classes: Vec<String> = if a.dice_per_class.len() <= 6 {
            a.dice_per_class.iter().map(|d| format!("{d:.3}")).collect()
        } else {
            // 66 classes do not fit a row: the lowest stands for them.
            let lowest = (a.dice_per_class.iter().enumerate())
                .filter(|(_, d)| !d.is_nan())
                .min_by(|x, y| x.1.total_cmp(y.1));
            lowest.map_or(vec!["n/a".into()], |(k, d)| {
                vec![format!("lowest class {}: {d:.3}", k + 1)]
            })
        };
        let folds: Vec<String> = a.folds.iter().map(|(f, d)| format!("{f}:{d:.3}")).collect();
        println!(
            "{:<5} {:<14} {:>9.4}  {:<24} {}",
            a.rank,
            a.algo,
            a.mean_dice,
            classes.join(" "),
            folds.join(" ")
        );
    }
    for t in &ranking.left_out {
        println!("left out: {t}");
    }
    println!("wrote {}", WorkDir::new(&args.work_dir).ranking().display());
    Ok(ExitCode::SUCCESS)
}

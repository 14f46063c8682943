//! `autoseg phantom`: write a synthetic dataset.

use std::process::ExitCode;

use autoseg_datasets::Modality;
use autoseg_datasets::phantom::{MAX_CLASSES, PhantomSpec};

use crate::cli::{PhantomArgs, PhantomModality};
use crate::pipeline;

pub fn run(args: &PhantomArgs) -> anyhow::Result<ExitCode> {
    let spec = spec_from(args)?;
    let written = pipeline::write_phantom(&spec, &args.out)?;
    println!(
        "wrote {} labelled + {} testing phantom cases to {}",
        spec.cases,
        spec.test_cases,
        written.root.display()
    );
    println!(
        "datalist: {}\ntask:     {}",
        written.datalist.display(),
        written.task.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn spec_from(args: &PhantomArgs) -> anyhow::Result<PhantomSpec> {
    anyhow::ensure!(
        args.cases + args.test_cases > 0,
        "--cases and --test-cases are both 0: nothing to write"
    );
    anyhow::ensure!(
        args.shape.iter().all(|&n| (2..=1024).contains(&n)),
        "--shape values must be 2 to 1024, got {:?}",
        args.shape
    );
    anyhow::ensure!(
        args.spacing.iter().all(|&s| s.is_finite() && s > 0.0),
        "--spacing values must be positive, got {:?}",
        args.spacing
    );
    anyhow::ensure!(
        (2..=MAX_CLASSES).contains(&args.classes),
        "--classes must be 2 to {MAX_CLASSES}, got {}",
        args.classes
    );
    anyhow::ensure!(
        !args.sparse_labels || args.classes < MAX_CLASSES,
        "--sparse-labels needs an id for its ignore label: --classes must be below {MAX_CLASSES}"
    );
    Ok(PhantomSpec {
        cases: args.cases,
        test_cases: args.test_cases,
        shape: args.shape,
        spacing: args.spacing,
        modality: match args.modality {
            PhantomModality::Mri => Modality::Mri,
            PhantomModality::Ct => Modality::Ct,
        },
        random_orientation: args.random_orientation,
        seed: args.seed,
        classes: args.classes,
        sparse_labels: args.sparse_labels,
    })
}

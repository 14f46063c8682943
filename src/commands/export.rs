//! `autoseg export`: a trained bundle, or each member of a work dir's ensemble, in a format
//! users deploy.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use autoseg_datasets::fsutil::write_bytes_atomic;
use autoseg_datasets::{Bundle, WorkDir};
use autoseg_ensembler::ensemble::{Combine, read_ensemble};
use autoseg_templates::export::{Exported, monai, onnx};

use crate::cli::{ExportArgs, ExportFormat};

/// The members' folders and the ensemble's rules, in the work dir's export folder.
const ENSEMBLE_FILE: &str = "ensemble.json";

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        ExportFormat::Onnx => "onnx",
        ExportFormat::Monai => "monai",
    };
    match (&args.model.bundle, &args.model.work_dir) {
        (Some(bundle), _) => {
            let out =
                (args.out.clone()).unwrap_or_else(|| Bundle::new(bundle).exports().join(format));
            report(&export(args.format, bundle, &out)?);
        }
        (None, Some(work_dir)) => {
            let out =
                (args.out.clone()).unwrap_or_else(|| WorkDir::new(work_dir).exports().join(format));
            let ensemble = read_ensemble(work_dir)?;
            let mut folders = Vec::new();
            for member in &ensemble.members {
                let bundle = work_dir.join(&member.bundle);
                let folder = Bundle::new(&bundle).name();
                report(&export(args.format, &bundle, &out.join(&folder))?);
                folders.push(folder);
            }
            // How the members combine, beside them: what a deployment does with their outputs.
            let manifest = serde_json::json!({"members": folders, "ensemble": ensemble});
            let path = out.join(ENSEMBLE_FILE);
            write_bytes_atomic(&path, serde_json::to_string_pretty(&manifest)?.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
            let combine = match ensemble.combine {
                Combine::Mean => "averages its members' softmax probabilities",
                Combine::Vote => "takes the class most of its members choose",
            };
            println!(
                "the ensemble ({} members) {combine}, then: {}",
                ensemble.members.len(),
                ensemble.describe_cleanups()
            );
        }
        (None, None) => anyhow::bail!("give --bundle or --work-dir"),
    }
    Ok(ExitCode::SUCCESS)
}

fn export(format: ExportFormat, bundle: &Path, out: &Path) -> anyhow::Result<Exported> {
    match format {
        ExportFormat::Onnx => onnx::export_bundle(bundle, out),
        ExportFormat::Monai => monai::export_bundle(bundle, out),
    }
    .with_context(|| format!("exporting {}", bundle.display()))
}

fn report(exported: &Exported) {
    let files: Vec<String> = exported
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    println!(
        "wrote {} ({:.1} MB of weights)",
        files.join(", "),
        exported.weight_bytes as f64 / 1e6
    );
}

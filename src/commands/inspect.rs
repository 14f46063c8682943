//! `autoseg inspect DIR`: what a bundle is and why (its configuration, each derived value's
//! rule and statistics, hand edits and overrides), how its training stands, its size and
//! memory per step; or, for a work dir, `autoseg run`'s plan and a line per bundle.

use autoseg_datasets::{Bundle, WorkDir};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use autoseg_templates::bundle::metadata::Metadata;
use autoseg_templates::bundle::progress::Progress;
use autoseg_templates::bundle::read_config;
use autoseg_templates::planner::RunPlan;
use autoseg_templates::templates::derivation::Derivation;
use autoseg_templates::templates::memory::step_memory_gb;
use autoseg_tuner::train::TrainConfig;
use serde_json::{Value, json};

use crate::cli::InspectArgs;

pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let single = Bundle::new(&args.dir).configs_dir().is_dir();
    let plan = RunPlan::read(&WorkDir::new(&args.dir).plan())?;
    if let Some(plan) = plan.as_ref().filter(|_| !args.json) {
        print_plan(&args.dir, plan);
    }
    let bundles = if single {
        vec![args.dir.clone()]
    } else {
        match bundles_in(&args.dir) {
            Err(_) if plan.is_some() => {
                println!("No bundle yet: `autoseg run` generates and trains the plan.");
                return Ok(ExitCode::SUCCESS);
            }
            found => found?,
        }
    };
    let reports = bundles
        .iter()
        .map(|b| report(b).with_context(|| format!("inspecting {}", b.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.json {
        let out = if single {
            reports[0].clone()
        } else {
            json!(reports)
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if single {
        print_bundle(&reports[0]);
    } else {
        print_work_dir(&args.dir, &reports);
    }
    Ok(ExitCode::SUCCESS)
}

/// The bundles of a work dir (or of a folder of bundles), sorted.
fn bundles_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let folder = if WorkDir::new(dir).bundles_dir().is_dir() {
        WorkDir::new(dir).bundles_dir()
    } else {
        dir.to_path_buf()
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(&folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| Bundle::new(p).configs_dir().is_dir())
        .collect();
    found.sort();
    anyhow::ensure!(
        !found.is_empty(),
        "{} holds no bundle (a folder with configs/); run `autoseg generate` first",
        dir.display()
    );
    Ok(found)
}

/// The value at a dotted key path.
fn lookup<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(value, |at, part| at.get(part))
}

/// Everything `inspect` says of one bundle, as JSON.
fn report(bundle: &Path) -> anyhow::Result<Value> {
    let config = TrainConfig::read(bundle)?;
    let merged = Value::Object(read_config(bundle)?.values);
    let derivation = Derivation::read(bundle).transpose()?;
    let derived: Vec<Value> = derivation
        .iter()
        .flat_map(|d| &d.values)
        .map(|d| {
            let current = lookup(&merged, &d.key).cloned().unwrap_or(Value::Null);
            let expected = d.overridden.as_ref().map_or(&d.value, |o| &o.value);
            let mut entry = serde_json::to_value(d).expect("derivations serialise");
            entry["current"] = current.clone();
            entry["edited"] = json!(&current != expected);
            entry
        })
        .collect();
    let progress = Progress::read(bundle).transpose()?;
    Ok(json!({
        "bundle": bundle.display().to_string(),
        "metrics": last_metrics(bundle, 5),
        "metadata": Metadata::read(bundle).ok(),
        "parameters": config.network.parameter_count()?,
        "memory_gb_per_step": step_memory_gb(&config.network, config.patch_size, config.batch_size),
        "training": progress,
        "derived": derived,
        "config": merged,
    }))
}

/// The last `rows` rows of a bundle's metrics.csv, as objects by column.
fn last_metrics(bundle: &Path, rows: usize) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(Bundle::new(bundle).metrics()) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let all: Vec<&str> = lines.collect();
    all[all.len().saturating_sub(rows)..]
        .iter()
        .map(|line| {
            let cells = line.split(',').map(|c| {
                c.parse::<u64>()
                    .map(|v| json!(v))
                    .or_else(|_| c.parse::<f64>().map(|v| json!(v)))
                    .unwrap_or_else(|_| json!(c))
            });
            Value::Object(header.iter().map(|h| h.to_string()).zip(cells).collect())
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_bundle(r: &Value) {
    let m = &r["metadata"];
    println!("bundle   {}", text(&r["bundle"]));
    if !m.is_null() {
        println!(
            "         {} fold {} of task {}",
            text(&m["template"]),
            m["fold"],
            text(&m["task"])
        );
    }
    println!(
        "network  {} parameters; about {:.2} GB per training step (nnU-Net's memory proxy)",
        r["parameters"],
        r["memory_gb_per_step"].as_f64().unwrap_or(f64::NAN)
    );
    println!("training {}", training_line(&r["training"]));
    for row in r["metrics"].as_array().into_iter().flatten() {
        let dice = row["mean_dice"]
            .as_f64()
            .map_or(String::new(), |d| format!(", mean Dice {d:.4}"));
        println!(
            "         epoch {}: loss {:.4}, learning rate {:.2e}, {:.1} s{dice}",
            row["epoch"],
            row["loss"].as_f64().unwrap_or(f64::NAN),
            row["learning_rate"].as_f64().unwrap_or(f64::NAN),
            row["seconds"].as_f64().unwrap_or(f64::NAN),
        );
    }
    println!("\nderived values (rule, then the statistics it read):");
    for d in r["derived"].as_array().into_iter().flatten() {
        println!("  {} = {}", text(&d["key"]), compact(&d["current"]));
        println!("      {}", text(&d["rule"]));
        for (k, v) in d["inputs"].as_object().into_iter().flatten() {
            println!("      <- {k} = {}", compact(v));
        }
        if let Some(o) = d.get("overridden") {
            println!(
                "      overridden by {}: template chose {}",
                text(&o["source"]),
                text(&d["value"])
            );
        }
        if d["edited"] == json!(true) {
            println!(
                "      edited by hand in configs/ (generated: {})",
                text(&d["value"])
            );
        }
    }
    println!("\nconfiguration (configs/*.yaml, merged):");
    print!(
        "{}",
        serde_yaml::to_string(&r["config"]).unwrap_or_default()
    );
}

/// A value in a line: long lists of label ids as ranges ("67 ids: 0, 1002-1003, 1005-1035"),
/// long lists of one repeated value as "67 x 1.0", anything else as it is.
fn compact(v: &Value) -> String {
    const LONG: usize = 12;
    let Some(items) = v.as_array().filter(|items| items.len() > LONG) else {
        return text(v);
    };
    let ids: Option<Vec<u16>> = (items.iter())
        .map(|i| i.as_u64().and_then(|n| u16::try_from(n).ok()))
        .collect();
    match ids {
        Some(ids) if ids.is_sorted() => {
            format!("{} ids: {}", ids.len(), autoseg_datasets::id_ranges(ids))
        }
        _ if items.iter().all(|i| i == &items[0]) => {
            format!("{} x {}", items.len(), text(&items[0]))
        }
        _ => text(v),
    }
}

fn training_line(t: &Value) -> String {
    if t.is_null() {
        return "not trained yet (autoseg train --bundle DIR)".into();
    }
    let best = t["best_dice"].as_f64().map_or("none".into(), |d| {
        format!("{d:.4} at epoch {}", t["best_epoch"])
    });
    format!(
        "{}: {}/{} epochs, best mean validation Dice {best}, {:.0} s",
        text(&t["status"]),
        t["epochs_done"],
        t["num_epochs"],
        t["seconds"].as_f64().unwrap_or(0.0)
    )
}

/// What `autoseg run` planned for its budget, and why.
fn print_plan(dir: &Path, plan: &RunPlan) {
    println!("plan ({}):", WorkDir::new(dir).plan().display());
    for line in plan.describe() {
        println!("  {line}");
    }
}

fn print_work_dir(dir: &Path, reports: &[Value]) {
    println!("{} bundle(s) in {}:", reports.len(), dir.display());
    for r in reports {
        let name = Path::new(&text(&r["bundle"]))
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "  {name:<16} {:>10} params  {:>6.2} GB/step  {}",
            r["parameters"],
            r["memory_gb_per_step"].as_f64().unwrap_or(f64::NAN),
            training_line(&r["training"])
        );
    }
}

//! `W/report.html`: one static page (pictures embedded, no network) that tells what a work
//! dir holds: the dataset's statistics, each bundle's configuration with the reasons for its
//! values and its training curves, the ranking, the ensemble and its cross-validation
//! figures, and overlays of validation cases predicted by the best bundle. A stage not run
//! yet is said to be missing, so the page can be made at any point of a run.

mod bundles;
pub mod html;
mod plan;
pub mod plot;

use std::path::{Path, PathBuf};

use autoseg_datasets::WorkDir;
use autoseg_datasets::{LabelVolume, Volume};
use autoseg_templates::ComputeDevice;
use autoseg_templates::bundle::runtime::{BundlePredictor, Segmenter};
use autoseg_templates::templates::stats::DataStats;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::crossval::validation_cases;
use crate::ensemble::EnsembleConfig;
use crate::overlay::{SLICES, overlay_png};
use crate::rank::Ranking;
use bundles::bundles_section;
use html::{escape, number, para, pre, table};

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A work-dir file is there but unreadable.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The report could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn unreadable(path: &Path, reason: impl ToString) -> ReportError {
    ReportError::Read {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// What the report shows besides the work dir's files.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Validation cases to predict and overlay (0: none).
    pub overlays: usize,
    /// Where those predictions run.
    pub device: ComputeDevice,
}

/// Makes `W/report.html` (written atomically) and returns its path.
pub fn write_report(work_dir: &Path, options: &ReportOptions) -> Result<PathBuf, ReportError> {
    let ranking: Option<Ranking> = read_yaml(&WorkDir::new(work_dir).ranking())?;
    let mut body = format!(
        "<p>Work dir <code>{}</code>, autoseg {}.</p>\n",
        escape(&work_dir.display().to_string()),
        env!("CARGO_PKG_VERSION")
    );
    body.push_str(&dataset_section(work_dir)?);
    body.push_str(&plan::plan_section(work_dir)?);
    body.push_str(&bundles_section(work_dir)?);
    body.push_str(&ranking_section(ranking.as_ref()));
    body.push_str(&ensemble_section(work_dir)?);
    body.push_str(&overlays_section(work_dir, ranking.as_ref(), options)?);
    let page = html::page("autoseg report", &body);
    let path = WorkDir::new(work_dir).report();
    autoseg_datasets::fsutil::write_bytes_atomic(&path, page.as_bytes()).map_err(|source| {
        ReportError::Write {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

/// A YAML file, `None` when it does not exist.
fn read_yaml<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, ReportError> {
    match autoseg_datasets::textfile::read_text(path) {
        Ok(text) => autoseg_datasets::textfile::from_yaml(&text)
            .map(Some)
            .map_err(|e| unreadable(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unreadable(path, e)),
    }
}

fn missing(what: &str, command: &str) -> String {
    format!(
        "<p class=\"missing\">No {} yet (<code>{}</code> makes it).</p>\n",
        escape(what),
        escape(command)
    )
}

/// A statistic as text: numbers rounded, lists and objects inline.
fn show(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if x.abs() >= 1e4 || x.fract() == 0.0 {
                    format!("{x:.1}")
                } else {
                    format!("{x:.4}")
                }
            }
        },
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        Value::String(s) => s.clone(),
        Value::Null => "n/a".into(),
        other => other.to_string(),
    }
}

fn dataset_section(work_dir: &Path) -> Result<String, ReportError> {
    let mut html = String::from("<h2>Dataset</h2>\n");
    let path = WorkDir::new(work_dir).datastats();
    if !path.exists() {
        return Ok(html + &missing("statistics", "autoseg analyze"));
    }
    let stats = DataStats::read(&path).map_err(|e| unreadable(&path, e))?;
    let get = |key: &str| stats.get(key).map(show).unwrap_or_else(|_| "n/a".into());
    let summary = "stats_summary";
    let rows: Vec<Vec<String>> = [
        ("cases", "n_cases"),
        ("channels", "image_stats.channels.max"),
        ("labels", "label_stats.labels"),
        ("shape, median (voxels)", "image_stats.shape.median"),
        ("shape, min", "image_stats.shape.min"),
        ("shape, max", "image_stats.shape.max"),
        ("spacing, median (mm)", "image_stats.spacing.median"),
        ("spacing, min", "image_stats.spacing.min"),
        ("spacing, max", "image_stats.spacing.max"),
        (
            "shape after crop, median",
            "nnunet_fingerprint.median_shape_after_crop",
        ),
        ("anisotropy (nnU-Net)", "nnunet_fingerprint.anisotropy"),
    ]
    .iter()
    .map(|(name, key)| vec![name.to_string(), get(&format!("{summary}.{key}"))])
    .collect();
    html.push_str(&table(&["statistic", "value"], &rows));
    html.push_str(&intensity_table(&stats)?);
    html.push_str(&labels_table(&stats));
    if let Ok(Value::Array(failed)) = stats.get("failed_cases")
        && !failed.is_empty()
    {
        html.push_str(&format!(
            "<p class=\"missing\">{} case(s) could not be read:</p>\n{}",
            failed.len(),
            pre(&serde_yaml::to_string(failed).unwrap_or_default())
        ));
    }
    Ok(html)
}

/// Intensity per channel over the image and over the foreground.
fn intensity_table(stats: &DataStats) -> Result<String, ReportError> {
    let mut rows = Vec::new();
    for (region, key) in [
        ("image", "stats_summary.image_stats.intensity_by_channel"),
        (
            "foreground",
            "stats_summary.image_foreground_stats.intensity_by_channel",
        ),
    ] {
        let Ok(Value::Array(channels)) = stats.get(key) else {
            continue;
        };
        for (c, s) in channels.iter().enumerate() {
            let f = |k: &str| s.get(k).map(show).unwrap_or_else(|| "n/a".into());
            rows.push(vec![
                region.to_string(),
                c.to_string(),
                f("mean"),
                f("stdev"),
                f("percentile_00_5"),
                f("percentile_99_5"),
                f("min"),
                f("max"),
            ]);
        }
    }
    Ok(table(
        &[
            "intensity",
            "channel",
            "mean",
            "stdev",
            "0.5 %",
            "99.5 %",
            "min",
            "max",
        ],
        &rows,
    ))
}

/// Per label: its share of the image, components and intensity.
fn labels_table(stats: &DataStats) -> String {
    let Ok(Value::Array(labels)) = stats.get("stats_summary.label_stats.label") else {
        return String::new();
    };
    let rows: Vec<Vec<String>> = labels
        .iter()
        .map(|l| {
            let mean = |k: &str| {
                l.get(k)
                    .and_then(|s| s.get("mean"))
                    .map(show)
                    .unwrap_or_else(|| "n/a".into())
            };
            let share = l
                .get("foreground_percentage")
                .and_then(|s| s.get("mean"))
                .and_then(Value::as_f64)
                .map_or("n/a".into(), |p| format!("{:.3} %", 100.0 * p));
            vec![
                l.get("label_id").map(show).unwrap_or_default(),
                l.get("n_cases").map(show).unwrap_or_default(),
                share,
                mean("n_components"),
                mean("image_intensity"),
            ]
        })
        .collect();
    table(
        &[
            "label",
            "cases with it",
            "share of voxels (mean)",
            "components (mean)",
            "intensity (mean)",
        ],
        &rows,
    )
}

/// The most classes a table gives a column (or a row) each.
const MAX_CLASS_COLUMNS: usize = 8;

/// The lowest defined per-class Dice and its class (from 1), e.g. "class 17: 0.412".
fn worst_class(dice: &[f64]) -> String {
    (dice.iter().enumerate())
        .filter(|(_, d)| !d.is_nan())
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or("n/a".into(), |(k, d)| {
            format!("class {}: {}", k + 1, number(*d))
        })
}

fn ranking_section(ranking: Option<&Ranking>) -> String {
    let mut html = String::from("<h2>Ranking</h2>\n");
    let Some(ranking) = ranking else {
        return html + &missing("ranking", "autoseg rank");
    };
    let classes = ranking
        .algos
        .iter()
        .map(|a| a.dice_per_class.len())
        .max()
        .unwrap_or(0);
    // Past a few classes, one column per class makes the table unreadable (66 cortical
    // classes): the worst class stands for them.
    let per_class = classes <= MAX_CLASS_COLUMNS;
    let mut headers: Vec<String> = ["rank", "algorithm", "mean Dice"]
        .map(String::from)
        .to_vec();
    if per_class {
        headers.extend((1..=classes).map(|k| format!("class {k}")));
    } else {
        headers.push(format!("worst of {classes} classes"));
    }
    headers.push("folds".into());
    let rows: Vec<Vec<String>> = ranking
        .algos
        .iter()
        .map(|a| {
            let mut row = vec![a.rank.to_string(), a.algo.clone(), number(a.mean_dice)];
            if per_class {
                row.extend(
                    (0..classes)
                        .map(|k| a.dice_per_class.get(k).map_or("n/a".into(), |d| number(*d))),
                );
            } else {
                row.push(worst_class(&a.dice_per_class));
            }
            row.push(
                a.folds
                    .iter()
                    .map(|(f, d)| format!("{f}: {}", number(*d)))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            row
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    html.push_str(&para(&format!("Score: {}.", ranking.score)));
    html.push_str(&table(&headers, &rows));
    if !ranking.left_out.is_empty() {
        html.push_str(&para(&format!(
            "Left out: {}.",
            ranking.left_out.join("; ")
        )));
    }
    html
}

fn ensemble_section(work_dir: &Path) -> Result<String, ReportError> {
    let mut html = String::from("<h2>Ensemble</h2>\n");
    let path = WorkDir::new(work_dir).ensemble();
    let Some(config): Option<EnsembleConfig> = read_yaml(&path)? else {
        return Ok(html + &missing("ensemble", "autoseg ensemble"));
    };
    html.push_str(&para(&format!(
        "Selection {:?}, combined by {:?}; {}.",
        config.selection,
        config.combine,
        config.describe_cleanups()
    )));
    let members: Vec<Vec<String>> = config
        .members
        .iter()
        .map(|m| vec![m.bundle.display().to_string(), number(m.dice)])
        .collect();
    html.push_str(&table(&["member", "validation Dice"], &members));
    match config.cross_validation_dice {
        Some(dice) => {
            let mut cells = vec![("mean".to_string(), number(dice))];
            cells.extend(
                (config.cross_validation_dice_per_class.iter())
                    .map(|(label, d)| (format!("label {label}"), number(*d))),
            );
            cells.extend(
                (config.cross_validation_dice_per_region.iter())
                    .map(|r| (format!("region {}", r.region), number(r.dice))),
            );
            // Many classes wrap into several pairs per row rather than one long column.
            let per_row = if cells.len() > MAX_CLASS_COLUMNS { 6 } else { 1 };
            let headers: Vec<&str> = std::iter::repeat_n(["", "Dice"], per_row)
                .flatten()
                .collect();
            let rows: Vec<Vec<String>> = cells
                .chunks(per_row)
                .map(|pairs| pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect())
                .collect();
            html.push_str("<h3>Cross-validation Dice (each fold's bundle on its validation cases)</h3>\n");
            html.push_str(&table(&headers, &rows));
        }
        None => html.push_str(&para(
            "Cross-validation was not measured (only greedy selection predicts the validation cases).",
        )),
    }
    Ok(html)
}

/// Validation cases of the best bundle, predicted and drawn over the reference.
fn overlays_section(
    work_dir: &Path,
    ranking: Option<&Ranking>,
    options: &ReportOptions,
) -> Result<String, ReportError> {
    let mut html = String::from("<h2>Example predictions</h2>\n");
    let best = ranking
        .and_then(|r| r.algos.first())
        .and_then(|a| a.bundles.iter().next());
    if options.overlays == 0 {
        return Ok(html + &para("None asked for (--overlays 0)."));
    }
    let Some((&fold, name)) = best else {
        return Ok(html + &missing("predictions to show", "autoseg rank"));
    };
    let bundle = WorkDir::new(work_dir).bundle(name).dir().to_path_buf();
    let predictor =
        BundlePredictor::load(&bundle, options.device).map_err(|e| unreadable(&bundle, e))?;
    let (dataset, validation) =
        validation_cases(&bundle, fold).map_err(|e| unreadable(&bundle, e))?;
    html.push_str(&para(&format!(
        "Validation cases of fold {fold} predicted by {name}: reference outlines green, \
         prediction red, yellow where they agree; axial slices, radiological view."
    )));
    for &index in validation.iter().take(options.overlays) {
        let case = &dataset.cases[index];
        let Some(label_path) = &case.label else {
            continue;
        };
        let image =
            Volume::read_channels(&case.images).map_err(|e| unreadable(&case.images[0], e))?;
        let pred = predictor
            .segment(image.clone(), &case.images[0])
            .map_err(|e| unreadable(&case.images[0], e))?;
        let reference = LabelVolume::read(label_path)
            .map_err(|e| unreadable(label_path, e))?
            .into_onto(image.geometry())
            .map_err(|e| unreadable(label_path, e))?;
        let picture = overlay_png(&image, &pred, &reference, SLICES)
            .map_err(|e| unreadable(label_path, e))?;
        html.push_str(&format!("<h3>{}</h3>\n", escape(&case.id)));
        html.push_str(&html::png(&picture, &format!("overlay of {}", case.id)));
    }
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ReportOptions {
        ReportOptions {
            overlays: 1,
            device: ComputeDevice::Flex,
        }
    }

    #[test]
    fn a_fresh_work_dir_gets_a_page_that_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_report(dir.path(), &options()).unwrap();
        let page = std::fs::read_to_string(path).unwrap();
        for words in [
            "No statistics yet (<code>autoseg analyze</code>",
            "No bundles yet",
            "No ranking yet",
            "No ensemble yet",
            "No predictions to show yet",
        ] {
            assert!(page.contains(words), "{words:?} not in {page}");
        }
    }

    #[test]
    fn a_malformed_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(WorkDir::new(dir.path()).ranking(), "algos: [unclosed").unwrap();
        let error = write_report(dir.path(), &options())
            .unwrap_err()
            .to_string();
        assert!(error.contains("ranking.yaml"), "{error}");
        assert!(!WorkDir::new(dir.path()).report().exists());
    }
}

//! The dataset integrity check behind `autoseg check`: every file exists, stays under the data
//! root and reads; channels agree; images and labels share a grid; images are finite; labels
//! are integer class ids without gaps. Every case is checked, whatever failed before it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::datalist::{Case, Dataset};
use crate::error::{DatasetError, LabelError};
use crate::geometry::{Geometry, GeometryTolerance};
use crate::label_scan::{LabelScan, id_ranges};
use crate::nifti::NiftiErrorKind;
use crate::volume::Volume;

/// How bad a problem is: errors fail the check (exit status 1), warnings only inform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The case cannot be used as it is.
    Error,
    /// Worth a look; training can proceed.
    Warning,
}

/// A machine-readable name for each kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A listed file does not exist.
    MissingFile,
    /// A path leads outside the data root.
    OutsideRoot,
    /// A file exists but cannot be read as NIfTI (truncated, bad magic, bad header...).
    Unreadable,
    /// Channel counts differ between cases, channel files, or from the datalist's modalities.
    ChannelMismatch,
    /// Image and label (or two channel files) do not share shape, spacing or position.
    GeometryMismatch,
    /// NaN or infinite image voxels.
    NonFinite,
    /// Label values that are not non-negative integers.
    InvalidLabel,
    /// A label id that the class names do not cover.
    UnknownLabel,
    /// Class ids that appear nowhere between 0 and the largest.
    LabelGap,
    /// A label map with background only.
    EmptyLabel,
    /// One file used by several cases.
    DuplicateFile,
    /// A task config key autoseg does not use.
    UnusedConfigKey,
    /// A region names a label id that no case holds.
    EmptyRegion,
}

/// One problem, tied to a case (or to the dataset when `case` is `None`) and a file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The case id.
    pub case: Option<String>,
    /// Where the case sits in the datalist, e.g. `training[4]`.
    pub locator: Option<String>,
    /// The file concerned.
    pub file: Option<PathBuf>,
    /// Error or warning.
    pub severity: Severity,
    /// What kind.
    pub kind: ProblemKind,
    /// What is wrong, in words, with the figures.
    pub message: String,
}

/// What to hold the dataset to.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// How closely image and label grids must agree.
    pub tolerance: GeometryTolerance,
    /// Number of classes including background, when the task or datalist names them.
    pub class_count: Option<usize>,
    /// Channels per case, when the datalist names its modalities.
    pub channels: Option<usize>,
    /// The label id of unannotated voxels, which is no class (nnU-Net's ignore label).
    pub ignore_label: Option<u16>,
}

/// The outcome of a check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Cases looked at (labelled and testing).
    pub cases_checked: usize,
    /// Cases with at least one error.
    pub failed_cases: usize,
    /// Channels per case (the most common count).
    pub channels: Option<usize>,
    /// Class ids seen in any label map, with their voxel counts (the ignore label's too).
    pub label_voxels: BTreeMap<u16, u64>,
    /// The label id of unannotated voxels, when the task has one.
    pub ignore_label: Option<u16>,
    /// Every problem, errors first, then by case order.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// Number of problems of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == severity)
            .count()
    }

    /// Adds a dataset-level problem (e.g. from the task config).
    pub fn push_dataset_problem(
        &mut self,
        severity: Severity,
        kind: ProblemKind,
        file: Option<PathBuf>,
        message: String,
    ) {
        self.problems.push(Problem {
            case: None,
            locator: None,
            file,
            severity,
            kind,
            message,
        });
        self.sort();
    }

    fn sort(&mut self) {
        self.problems.sort_by_key(|p| p.severity); // stable: case order within a severity
    }
}

/// What one case showed.
#[derive(Default)]
struct CaseFindings {
    problems: Vec<Problem>,
    channels: Option<usize>,
    label_counts: Vec<u64>,
}

struct CaseChecker<'a> {
    case: &'a Case,
    findings: CaseFindings,
}

impl<'a> CaseChecker<'a> {
    fn problem(
        &mut self,
        severity: Severity,
        kind: ProblemKind,
        file: Option<&Path>,
        message: String,
    ) {
        self.findings.problems.push(Problem {
            case: Some(self.case.id.clone()),
            locator: Some(self.case.locator()),
            file: file.map(Path::to_path_buf),
            severity,
            kind,
            message,
        });
    }

    /// Reads a file after the root check, turning failures into problems.
    fn read(&mut self, dataset: &Dataset, path: &Path) -> Option<Volume> {
        if let Err(e) = dataset.check_inside_root(path) {
            self.problem(
                Severity::Error,
                ProblemKind::OutsideRoot,
                Some(path),
                strip_path(&e.to_string(), path),
            );
            return None;
        }
        match Volume::read(path) {
            Ok(volume) => Some(volume),
            Err(DatasetError::Nifti(e)) => {
                let kind = if matches!(e.kind, NiftiErrorKind::NotFound) {
                    ProblemKind::MissingFile
                } else {
                    ProblemKind::Unreadable
                };
                self.problem(Severity::Error, kind, Some(path), e.kind.to_string());
                None
            }
            Err(e) => {
                self.problem(
                    Severity::Error,
                    ProblemKind::Unreadable,
                    Some(path),
                    strip_path(&e.to_string(), path),
                );
                None
            }
        }
    }

    fn check_images(&mut self, dataset: &Dataset, tol: &GeometryTolerance) -> Option<Geometry> {
        let mut reference: Option<(Geometry, &Path)> = None;
        let mut channels = 0;
        let mut all_read = true;
        for path in &self.case.images {
            let Some(volume) = self.read(dataset, path) else {
                all_read = false;
                continue;
            };
            channels += volume.channels();
            let non_finite = volume.data().iter().filter(|v| !v.is_finite()).count();
            if non_finite > 0 {
                let msg = format!(
                    "{non_finite} of {} voxels are NaN or infinite",
                    volume.data().len()
                );
                self.problem(Severity::Error, ProblemKind::NonFinite, Some(path), msg);
            }
            match reference {
                None => reference = Some((*volume.geometry(), path)),
                Some((geometry, first)) => {
                    if let Some(m) = geometry.mismatch(volume.geometry(), tol) {
                        let msg = format!("channel file {m} (compared with {})", first.display());
                        self.problem(
                            Severity::Error,
                            ProblemKind::GeometryMismatch,
                            Some(path),
                            msg,
                        );
                    }
                }
            }
        }
        if all_read {
            self.findings.channels = Some(channels);
        }
        reference.map(|(g, _)| g)
    }

    fn check_label(&mut self, dataset: &Dataset, image: Option<Geometry>, options: &CheckOptions) {
        let Some(path) = self.case.label.clone() else {
            return;
        };
        let Some(volume) = self.read(dataset, &path) else {
            return;
        };
        if volume.channels() != 1 {
            let msg = LabelError::Channels {
                channels: volume.channels(),
            }
            .to_string();
            self.problem(Severity::Error, ProblemKind::InvalidLabel, Some(&path), msg);
            return;
        }
        let scan = LabelScan::of(volume.data());
        if let Some(e) = scan.error(volume.dims()) {
            self.problem(
                Severity::Error,
                ProblemKind::InvalidLabel,
                Some(&path),
                e.to_string(),
            );
        }
        if let Some(image) = image
            && let Some(m) = image.mismatch(volume.geometry(), &options.tolerance)
        {
            let msg = format!(
                "label {m} (compared with the image {})",
                self.case.images[0].display()
            );
            self.problem(
                Severity::Error,
                ProblemKind::GeometryMismatch,
                Some(&path),
                msg,
            );
        }
        if let Some(classes) = options.class_count {
            let unknown: Vec<String> = scan
                .present()
                .into_iter()
                .filter(|&id| id as usize >= classes && Some(id) != options.ignore_label)
                .map(|id| id.to_string())
                .collect();
            if !unknown.is_empty() {
                let msg = format!(
                    "label ids {} are beyond the {classes} named classes (0..{})",
                    unknown.join(", "),
                    classes - 1
                );
                self.problem(Severity::Error, ProblemKind::UnknownLabel, Some(&path), msg);
            }
        }
        if scan.first_bad.is_none() && scan.present() == [0] {
            self.problem(
                Severity::Warning,
                ProblemKind::EmptyLabel,
                Some(&path),
                "label map is all background".into(),
            );
        }
        self.findings.label_counts = scan.counts;
    }
}

/// Keeps a message from naming the file twice (the table shows it in its own column).
fn strip_path(message: &str, path: &Path) -> String {
    message
        .strip_prefix(&format!("{}: ", path.display()))
        .unwrap_or(message)
        .to_string()
}

fn check_case(dataset: &Dataset, case: &Case, options: &CheckOptions) -> CaseFindings {
    let mut checker = CaseChecker {
        case,
        findings: CaseFindings::default(),
    };
    let image = checker.check_images(dataset, &options.tolerance);
    checker.check_label(dataset, image, options);
    checker.findings
}

/// Checks every case of `dataset` in parallel; `on_case_done` is called once per case (for a
/// progress bar). Memory stays at about one case per worker thread.
pub fn check_dataset(
    dataset: &Dataset,
    options: &CheckOptions,
    on_case_done: &(dyn Fn() + Sync),
) -> CheckReport {
    let cases: Vec<&Case> = dataset.all_cases().collect();
    let findings: Vec<CaseFindings> = cases
        .par_iter()
        .map(|case| {
            let f = check_case(dataset, case, options);
            on_case_done();
            f
        })
        .collect();
    let mut problems: Vec<Problem> = Vec::new();
    let channels = check_channels(&cases, &findings, options.channels, &mut problems);
    let mut label_voxels = BTreeMap::new();
    for f in &findings {
        for (id, &n) in f.label_counts.iter().enumerate() {
            if n > 0 {
                *label_voxels.entry(id as u16).or_insert(0) += n;
            }
        }
    }
    let mut classes = label_voxels.clone();
    if let Some(id) = options.ignore_label {
        classes.remove(&id);
    }
    check_gaps(&classes, &mut problems);
    check_duplicates(&cases, &mut problems);
    for f in findings {
        problems.extend(f.problems);
    }
    let mut failed: Vec<&str> = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .filter_map(|p| p.case.as_deref())
        .collect();
    failed.sort_unstable();
    failed.dedup();
    let mut report = CheckReport {
        cases_checked: cases.len(),
        failed_cases: failed.len(),
        channels,
        label_voxels,
        ignore_label: options.ignore_label,
        problems,
    };
    report.sort();
    report
}

fn case_problem(
    case: &Case,
    severity: Severity,
    kind: ProblemKind,
    file: Option<&Path>,
    message: String,
) -> Problem {
    Problem {
        case: Some(case.id.clone()),
        locator: Some(case.locator()),
        file: file.map(Path::to_path_buf),
        severity,
        kind,
        message,
    }
}

/// Channel counts must agree across cases (and with the datalist's modality list).
fn check_channels(
    cases: &[&Case],
    findings: &[CaseFindings],
    expected: Option<usize>,
    problems: &mut Vec<Problem>,
) -> Option<usize> {
    let mut tally: HashMap<usize, usize> = HashMap::new();
    for f in findings {
        if let Some(c) = f.channels {
            *tally.entry(c).or_default() += 1;
        }
    }
    let common = tally
        .iter()
        .max_by_key(|&(c, n)| (*n, std::cmp::Reverse(*c)))
        .map(|(&c, _)| c);
    let wanted = expected.or(common)?;
    let why = if expected.is_some() {
        "the datalist's modality list names"
    } else {
        "most cases have"
    };
    for (case, f) in cases.iter().zip(findings) {
        if let Some(c) = f.channels.filter(|&c| c != wanted) {
            let msg = format!("{c} channels, but {why} {wanted}");
            problems.push(case_problem(
                case,
                Severity::Error,
                ProblemKind::ChannelMismatch,
                case.images.first().map(PathBuf::as_path),
                msg,
            ));
        }
    }
    Some(wanted)
}

fn check_gaps(label_voxels: &BTreeMap<u16, u64>, problems: &mut Vec<Problem>) {
    let Some(&max) = label_voxels.keys().last() else {
        return;
    };
    let missing = (0..=max).filter(|id| !label_voxels.contains_key(id));
    let missing = id_ranges(missing);
    if !missing.is_empty() {
        let present = id_ranges(label_voxels.keys().copied());
        let msg = format!(
            "label ids {missing} appear in no case (present: {present}); ids are not contiguous"
        );
        problems.push(Problem {
            case: None,
            locator: None,
            file: None,
            severity: Severity::Warning,
            kind: ProblemKind::LabelGap,
            message: msg,
        });
    }
}

fn check_duplicates(cases: &[&Case], problems: &mut Vec<Problem>) {
    let mut users: HashMap<&Path, Vec<&Case>> = HashMap::new();
    for case in cases {
        for file in case.files() {
            users.entry(file.as_path()).or_default().push(case);
        }
    }
    for case in cases {
        for file in case.files() {
            let sharing = &users[file.as_path()];
            if sharing.len() > 1
                && std::ptr::eq(sharing[0], *case)
                && sharing.iter().any(|c| c.locator() != case.locator())
            {
                let others: Vec<String> = sharing[1..].iter().map(|c| c.locator()).collect();
                let msg = format!("file is also used by {}", others.join(", "));
                problems.push(case_problem(
                    case,
                    Severity::Warning,
                    ProblemKind::DuplicateFile,
                    Some(file),
                    msg,
                ));
            }
        }
    }
}

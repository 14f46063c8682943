//! Training a work dir's trials on a SLURM cluster: one sbatch job array, a task per trial,
//! each task running `autoseg train --work-dir W --algos A --folds F` on the shared work dir
//! (the trials ledger is rewritten under a file lock, so tasks on many nodes share it). The
//! submitting command can wait: it polls `squeue` until the array is gone, then reads each
//! trial's state; a trial neither finished nor recorded as failed was lost (a task killed,
//! preempted or on a failed node) and is submitted again, up to a number of retries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use autoseg_datasets::WorkDir;

use crate::train::TrainError;
use crate::trials::{Trial, TrialStatus, read_ledger, trial_of};

/// How trials go to the cluster.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// The `autoseg` binary the tasks run (on a path every node sees).
    pub autoseg: PathBuf,
    /// `--device` for each task.
    pub device: String,
    /// Cores per task.
    pub cpus_per_task: usize,
    /// Extra sbatch options, one per entry (`--partition=gpu`, `--gres=gpu:1`).
    pub sbatch_options: Vec<String>,
    /// Times a lost trial is submitted again.
    pub retries: usize,
    /// Seconds between polls while waiting.
    pub poll_seconds: f64,
}

/// The folder of a work dir's cluster task logs.
pub fn logs_dir(work_dir: &Path) -> PathBuf {
    WorkDir::new(work_dir).slurm_dir().join("logs")
}

fn cluster_error(path: &Path, reason: impl ToString) -> TrainError {
    TrainError::Config {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Writes the job array for `trials` (`W/slurm/train_<n>.sbatch` and its trial list) and
/// submits it; returns the job id.
pub fn submit(
    work_dir: &Path,
    trials: &[Trial],
    options: &SlurmOptions,
) -> Result<String, TrainError> {
    let work_dir = std::path::absolute(work_dir).map_err(|e| cluster_error(work_dir, e))?;
    let dir = WorkDir::new(&work_dir).slurm_dir();
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| cluster_error(&dir, e))?;
    let n = (0..)
        .find(|i| !dir.join(format!("train_{i}.sbatch")).exists())
        .expect("some index is free");
    let list = dir.join(format!("trials_{n}.txt"));
    let lines: String = trials
        .iter()
        .map(|t| format!("{} {}\n", t.algo, t.fold))
        .collect();
    crate::train::atomic_write(&list, lines.as_bytes())?;
    let script = dir.join(format!("train_{n}.sbatch"));
    let text = sbatch_script(&work_dir, &list, trials.len(), options);
    crate::train::atomic_write(&script, text.as_bytes())?;
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&script)
        .output()
        .map_err(|e| cluster_error(&script, format!("running sbatch: {e}")))?;
    if !out.status.success() {
        return Err(cluster_error(
            &script,
            format!(
                "sbatch refused it: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let id = String::from_utf8_lossy(&out.stdout);
    Ok(id.trim().split(';').next().unwrap_or("").to_string())
}

/// The job array's script.
fn sbatch_script(work_dir: &Path, list: &Path, tasks: usize, options: &SlurmOptions) -> String {
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let extra: String = options
        .sbatch_options
        .iter()
        .map(|o| format!("#SBATCH {o}\n"))
        .collect();
    format!(
        "#!/bin/bash\n\
         # Written by `autoseg train --cluster slurm`: one task per trial of the list.\n\
         #SBATCH --job-name=autoseg-train\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --output={logs}/%A_%a.out\n\
         {extra}\
         set -euo pipefail\n\
         read -r algo fold < <(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {list})\n\
         exec {autoseg} train --work-dir {work} --algos \"$algo\" --folds \"$fold\" --device {device}\n",
        last = tasks.saturating_sub(1),
        cpus = options.cpus_per_task.max(1),
        logs = logs_dir(work_dir).display(),
        list = quote(list),
        autoseg = quote(&options.autoseg),
        work = quote(work_dir),
        device = options.device,
    )
}

/// Whether any task of job `id` is still queued or running.
fn in_queue(id: &str) -> Result<bool, TrainError> {
    let out = Command::new("squeue")
        .args(["-h", "-j", id, "-o", "%i"])
        .output()
        .map_err(|e| cluster_error(Path::new("squeue"), e))?;
    // A failing squeue (controller down) must not read as "the job is gone": its trials
    // would be taken for lost and submitted again.
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        if !said.contains("Invalid job id") {
            return Err(cluster_error(Path::new("squeue"), said.trim()));
        }
    }
    Ok(!String::from_utf8_lossy(&out.stdout).trim().is_empty())
}

/// Waits for job `id` (running `trials`) to leave the queue, then submits the lost trials
/// again while retries are left; `on_event` hears of each step. Returns the trials as their
/// files and the ledger tell them at the end.
pub fn wait(
    work_dir: &Path,
    mut id: String,
    trials: &[Trial],
    options: &SlurmOptions,
    on_event: &dyn Fn(&str),
) -> Result<Vec<Trial>, TrainError> {
    let mut retries = options.retries;
    loop {
        while in_queue(&id)? {
            std::thread::sleep(Duration::from_secs_f64(options.poll_seconds));
        }
        let now = current(work_dir, trials)?;
        let lost: Vec<Trial> = now
            .iter()
            .filter(|t| !matches!(t.status, TrialStatus::Finished | TrialStatus::Failed))
            .cloned()
            .collect();
        if lost.is_empty() || retries == 0 {
            if !lost.is_empty() {
                on_event(&format!("{} trial(s) lost and no retries left", lost.len()));
            }
            return Ok(now);
        }
        retries -= 1;
        let names: Vec<&str> = lost.iter().map(|t| t.bundle.as_str()).collect();
        id = submit(work_dir, &lost, options)?;
        on_event(&format!("lost {names:?}: submitted again as job {id}"));
    }
}

/// Each trial's state: its files, with a failure recorded in the ledger kept.
fn current(work_dir: &Path, trials: &[Trial]) -> Result<Vec<Trial>, TrainError> {
    let ledger = read_ledger(&WorkDir::new(work_dir).trials()).unwrap_or_default();
    trials
        .iter()
        .map(|t| {
            let mut now = trial_of(WorkDir::new(work_dir).bundle(&t.bundle).dir())?;
            if let Some(recorded) = ledger.iter().find(|r| r.bundle == t.bundle)
                && recorded.status == TrialStatus::Failed
                && now.status != TrialStatus::Finished
            {
                now.status = TrialStatus::Failed;
                now.note = recorded.note.clone();
            }
            Ok(now)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_runs_one_trial_per_task_on_the_shared_work_dir() {
        let options = SlurmOptions {
            autoseg: "/opt/autoseg it's".into(),
            device: "cuda:0".into(),
            cpus_per_task: 4,
            sbatch_options: vec!["--gres=gpu:1".into()],
            retries: 1,
            poll_seconds: 1.0,
        };
        let text = sbatch_script(
            Path::new("/w"),
            Path::new("/w/slurm/trials_0.txt"),
            3,
            &options,
        );
        assert!(text.starts_with("#!/bin/bash\n"));
        for line in [
            "#SBATCH --array=0-2",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --output=/w/slurm/logs/%A_%a.out",
            "#SBATCH --gres=gpu:1",
            "sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" '/w/slurm/trials_0.txt'",
            "exec '/opt/autoseg it'\\''s' train --work-dir '/w' --algos \"$algo\" --folds \"$fold\" --device cuda:0",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }
}

//! `autoseg train --cluster slurm` against a real single-node SLURM (scripts/slurm-single-node.sh,
//! which scripts/test.sh runs first): a job array of phantom trials completes on the shared
//! work dir, a task cancelled before it ran is found lost and submitted again, and `autoseg
//! rank` ranks the trials.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn a_job_array_of_trials_completes_and_a_lost_task_is_submitted_again() {
    let up = Command::new("sinfo").args(["-h", "-o", "%T"]).output();
    assert!(
        up.as_ref().is_ok_and(|o| o.status.success()),
        "no SLURM here: start one with scripts/slurm-single-node.sh (scripts/test.sh does)"
    );
    let (_dir, work) = common::analyzed_phantoms(6);
    let w = work.to_str().unwrap();
    common::generate(
        &work,
        "dynunet",
        "0,1,2",
        &[
            "network.filters=[4, 8, 16]",
            "num_epochs=2",
            "iterations_per_epoch=2",
        ],
    );
    // Every core per task: one runs at a time, so the last is still pending when cancelled.
    let cores = std::thread::available_parallelism()
        .unwrap()
        .get()
        .to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_autoseg"))
        .args([
            "train",
            "-w",
            w,
            "--cluster",
            "slurm",
            "--cpus-per-task",
            &cores,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let job = first
        .split("job array ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job id in {first:?}"))
        .to_string();
    let cancelled = Command::new("scancel")
        .arg(format!("{job}_2"))
        .status()
        .unwrap();
    assert!(cancelled.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let said = format!("{first}\n{}", rest.join("\n"));
    assert!(child.wait().unwrap().success(), "{said}");
    assert!(
        said.contains("lost [\"dynunet_2\"]: submitted again as job"),
        "{said}"
    );
    assert!(said.contains("3 trial(s): 3 finished, 0 failed"), "{said}");
    let ledger = common::read_yaml(&work.join("trials.yaml"));
    let finished = ledger
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "finished")
        .count();
    assert_eq!(finished, 3, "{ledger}");
    assert!(work.join(format!("slurm/logs/{job}_0.out")).is_file());
    assert!(
        work.join("slurm/train_1.sbatch").is_file(),
        "the resubmission's script"
    );
    let ranked = common::run_ok(&["rank", "-w", w]);
    assert!(
        ranked.contains("dynunet") && ranked.contains("0:") && ranked.contains("2:"),
        "{ranked}"
    );
}

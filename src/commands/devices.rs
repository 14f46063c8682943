//! `autoseg devices`: what this build can compute on, each tried with a small product.

use std::process::ExitCode;

use autoseg_templates::ComputeDevice;

pub fn run() -> anyhow::Result<ExitCode> {
    let mut all_ok = true;
    for device in ComputeDevice::compiled() {
        let status = match device.smoke_test() {
            Ok(()) => "ok".to_string(),
            Err(why) => {
                all_ok = false;
                format!("unavailable: {why}")
            }
        };
        println!(
            "{:<8} {:<45} {status}",
            device.to_string(),
            device.describe()
        );
    }
    if !cfg!(feature = "tch") {
        println!("(libtorch CPU/CUDA devices need a build with `--features tch`; see README)");
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

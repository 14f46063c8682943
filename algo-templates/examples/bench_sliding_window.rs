//! Times sliding-window inference of the peer's small U-Net (random weights) over a
//! random volume, for `bench/sliding_window.sh`, which runs MONAI's
//! `sliding_window_inference` (`../shared/peer/sliding_window.py`) in the same run.
//!
//!   cargo run --release -p autoseg-templates --example bench_sliding_window [--features tch] -- \
//!       [--device cpu|tch|cuda:0] [--size 240,240,155] [--roi 96] [--overlap 0.5] [--sw-batch 2]
//!
//! As MONAI's call: Gaussian blending of the raw outputs (no softmax), 3 runs, the median.
//! Prints one JSON object.

use std::time::Instant;

use autoseg_templates::ComputeDevice;
use autoseg_templates::inference::{Accumulation, Blend, SlidingWindow};
use autoseg_templates::networks::SmallUNet;
use burn::tensor::{Distribution, Tensor};

fn main() -> Result<(), String> {
    let mut device = ComputeDevice::Flex;
    let mut size = [240usize, 240, 155];
    let (mut roi, mut overlap, mut batch) = (96usize, 0.5f64, 2usize);
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("{} needs a value", pair[0]));
        };
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--device" => device = value.parse().map_err(|e| bad(&e))?,
            "--size" => {
                let parts: Vec<usize> = value
                    .split(',')
                    .map(|p| p.parse().map_err(|e| bad(&e)))
                    .collect::<Result<_, _>>()?;
                size = parts.try_into().map_err(|_| bad(&"three sizes"))?;
            }
            "--roi" => roi = value.parse().map_err(|e| bad(&e))?,
            "--overlap" => overlap = value.parse().map_err(|e| bad(&e))?,
            "--sw-batch" => batch = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let burn_device = device.burn_device();
    let net = SmallUNet::new(1, 3, &burn_device);
    let n: usize = size.iter().product();
    let image = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &burn_device)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let window = SlidingWindow {
        roi: [roi; 3],
        overlap,
        batch,
        blend: Blend::Gaussian,
        accumulation: Accumulation::for_device(device),
    };
    let mut seconds = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let out = window.blend(&image, 1, size, 3, &burn_device, |x| net.forward(x));
        seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(out.len(), 3 * n);
    }
    seconds.sort_by(f64::total_cmp);
    println!(
        "{{\"device\": \"{device}\", \"sliding_window_seconds\": {:.3}}}",
        seconds[1]
    );
    Ok(())
}

//! The fp32 rate of one matrix product on a device, for `bench/dynunet_step.sh`: what the
//! backend's own GEMM reaches (flex: the `gemm` crate; tch: oneDNN / MKL), beside the peer's.
//!
//!   cargo run --release -p autoseg-tuner --example bench_gemm [--features tch] -- [--device cpu|tch] [--size 4096]
//!
//! Prints one JSON object: the best of 5 products of two `size x size` matrices, in GFLOP/s.

use std::time::Instant;

use anyhow::bail;
use autoseg_templates::ComputeDevice;
use burn::tensor::{Distribution, Tensor};

mod common;

fn main() -> anyhow::Result<()> {
    let (mut device, mut n) = (ComputeDevice::Flex, 4096usize);
    for (flag, value) in common::flag_pairs()? {
        match flag.as_str() {
            "--device" => device = value.parse()?,
            "--size" => n = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    let burn_device = device.burn_device();
    let a = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &burn_device);
    let b = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &burn_device);
    let mut best = f64::INFINITY;
    // The first product (allocation, thread start-up) is not timed.
    for _ in 0..6 {
        let started = Instant::now();
        // Reading one value waits for the product on asynchronous backends.
        let _ = a
            .clone()
            .matmul(b.clone())
            .slice([0..1, 0..1])
            .into_scalar::<f32>();
        best = best.min(started.elapsed().as_secs_f64());
    }
    let gflops = 2.0 * (n as f64).powi(3) / best / 1e9;
    println!("{{\"device\": \"{device}\", \"size\": {n}, \"gemm_gflops\": {gflops:.1}}}");
    Ok(())
}

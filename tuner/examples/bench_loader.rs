//! Data-loading throughput of a bundle: augmented patches per second, made the way training
//! makes them (rayon workers), the model left out. For `bench/train_task04.sh`, which sets
//! it beside the time a training step takes.
//!
//!   cargo run --release -p autoseg-tuner --example bench_loader -- BUNDLE [BATCHES]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use autoseg_tuner::train::{TrainConfig, prepare_fold, training_set};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let bundle = PathBuf::from(
        args.next()
            .context("usage: bench_loader BUNDLE [BATCHES]")?,
    );
    let batches: u64 = args.next().map(|b| b.parse()).transpose()?.unwrap_or(40);
    let config = TrainConfig::read(&bundle)?;
    let (training, _) = prepare_fold(&bundle, &config)?;
    let set = training_set(&config, training);
    let started = Instant::now();
    for i in 0..batches {
        std::hint::black_box(set.batch(i));
    }
    let seconds = started.elapsed().as_secs_f64();
    let patches = batches as f64 * config.batch_size as f64;
    println!(
        "{{\"patches_per_second\": {:.1}, \"seconds_per_batch\": {:.4}, \"batch_size\": {}}}",
        patches / seconds,
        seconds / batches as f64,
        config.batch_size
    );
    Ok(())
}

//! Times autoseg's resampling of an image to a new spacing, for `bench/resample.sh` (which
//! runs MONAI's Spacing transform on the same file).
//!
//!   cargo run --release --example bench_resample -- IMAGE.nii.gz SPACING
//!
//! Prints one JSON object: the output shape and the seconds of linear (MONAI's default
//! bilinear) and of cubic (nnU-Net's order 3) resampling of every channel, file read excluded.

use std::time::Instant;

use anyhow::Context;
use autoseg_datasets::Volume;
use autoseg_kernels::resample::{Order, image_orders, resample, separate_axis, target_shape};
use rayon::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image, spacing] = args.as_slice() else {
        anyhow::bail!("usage: bench_resample IMAGE.nii.gz SPACING");
    };
    let new_spacing = [spacing.parse::<f64>().context("SPACING")?; 3];
    let image = Volume::read(image.as_ref())?;
    let (dims, spacing) = (image.dims(), image.spacing());
    let new_dims = target_shape(dims, spacing, new_spacing);
    let separate = separate_axis(spacing, new_spacing);
    let time = |order: Order| {
        let started = Instant::now();
        let out: Vec<Vec<f32>> = (0..image.channels())
            .into_par_iter()
            .map(|c| {
                resample(
                    image.channel(c),
                    dims,
                    new_dims,
                    image_orders(order, separate),
                )
            })
            .collect();
        (started.elapsed().as_secs_f64(), out.len())
    };
    let (linear, channels) = time(Order::Linear);
    let (cubic, _) = time(Order::Cubic);
    let out = serde_json::json!({
        "shape": new_dims,
        "channels": channels,
        "linear_seconds": linear,
        "cubic_seconds": cubic,
    });
    println!("{out}");
    Ok(())
}

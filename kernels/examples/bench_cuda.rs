//! GPU against CPU for the kernels with a CUDA path, on a BraTS-sized volume (240x240x155):
//! confusion matrix (5 classes), exact EDT of a sparse mask, linear and cubic resampling to
//! 1.5 mm, components, the bilateral grid, and Gaussian blending of 48 windows of 96^3 with 2
//! channels. Prints seconds and the CPU/GPU ratio of each (the GPU's include host-device
//! copies; the GPU is warmed up first).
//!
//!   cargo run --release -p autoseg-kernels --features cuda --example bench_cuda

use std::time::Instant;

use autoseg_kernels::cuda::Gpu;
use autoseg_kernels::resample::{Order, resample};
use autoseg_kernels::{
    BilateralSigmas, ConfusionMatrix, Connectivity, Window, WindowAccumulator, bilateral_grid,
    gaussian_importance_map, label_components, squared_distance_to,
};

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed().as_secs_f64())
}

fn report(what: &str, cpu: f64, gpu: f64) {
    println!(
        "{what:<28} cpu {cpu:8.4} s   gpu {gpu:8.4} s   cpu/gpu {:6.1}x",
        cpu / gpu
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dims = [240, 240, 155];
    let n: usize = dims.iter().product();
    let mut state = 7u64;
    let mut rand = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (gpu, startup) = time(|| Gpu::new(0));
    let gpu = gpu?;
    println!("GPU ready (driver, NVRTC compile, module load) in {startup:.3} s");

    let pred: Vec<u16> = (0..n).map(|_| (rand() * 5.0) as u16).collect();
    let reference: Vec<u16> = (0..n).map(|_| (rand() * 5.0) as u16).collect();
    gpu.confusion_matrix(&pred[..1000], &reference[..1000], 5)?; // warm-up
    let (a, cpu) = time(|| ConfusionMatrix::of(&pred, &reference, 5));
    let (b, on_gpu) = time(|| gpu.confusion_matrix(&pred, &reference, 5));
    assert_eq!(a, b?);
    report("confusion matrix, 5 classes", cpu, on_gpu);

    let mask: Vec<bool> = (0..n).map(|_| rand() < 0.001).collect();
    let spacing = [1.0, 1.0, 2.5];
    let (a, cpu) = time(|| squared_distance_to(&mask, dims, spacing));
    let (b, on_gpu) = time(|| gpu.squared_distance_to(&mask, dims, spacing));
    let b = b?;
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| (x - y).abs() <= 1e-9 * x.max(1.0))
    );
    report("EDT, anisotropic", cpu, on_gpu);

    let image: Vec<f32> = (0..n).map(|_| (rand() * 200.0) as f32).collect();
    let to = [160, 160, 103];
    let orders = [Order::Linear; 3];
    let (a, cpu) = time(|| resample(&image, dims, to, orders));
    let (b, on_gpu) = time(|| gpu.resample(&image, dims, to, orders));
    let b = b?;
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| (x - y).abs() <= 1e-5 * x.abs().max(1.0))
    );
    report("resample linear to 1.5 mm", cpu, on_gpu);

    let (_, cpu) = time(|| resample(&image, dims, to, [Order::Cubic; 3]));
    let (_, on_gpu) = time(|| gpu.resample(&image, dims, to, [Order::Cubic; 3]));
    report("resample cubic to 1.5 mm", cpu, on_gpu);

    let blobs: Vec<u16> = mask.iter().map(|&m| m as u16).collect();
    let (a, cpu) = time(|| label_components(&blobs, dims, Connectivity::TwentySix));
    let (b, on_gpu) = time(|| gpu.label_components(&blobs, dims, Connectivity::TwentySix));
    assert_eq!(a, b?);
    report("components, 26-connected", cpu, on_gpu);

    let sigmas = BilateralSigmas {
        spatial: 3.0,
        range: 20.0,
    };
    let (_, cpu) = time(|| bilateral_grid(&image, dims, sigmas));
    let (_, on_gpu) = time(|| gpu.cross_bilateral_grid(&image, &image, dims, sigmas));
    report("bilateral grid", cpu, on_gpu);

    let window = [96, 96, 96];
    let importance = gaussian_importance_map(window, 1.0 / 8.0);
    let values: Vec<f32> = (0..importance.len() * 2).map(|_| rand() as f32).collect();
    let origins: Vec<[usize; 3]> = [0, 48, 96, 144]
        .into_iter()
        .flat_map(|x| {
            [0, 48, 96, 144]
                .into_iter()
                .flat_map(move |y| [0, 48, 59].map(|z| [x, y, z]))
        })
        .collect();
    let (a, cpu) = time(|| {
        let mut acc = WindowAccumulator::new(dims, 2);
        origins.iter().for_each(|&origin| {
            acc.add(&Window {
                origin,
                size: window,
                values: &values,
                importance: &importance,
            })
        });
        acc.finish()
    });
    let (b, on_gpu) = time(|| -> Result<Vec<f32>, autoseg_kernels::cuda::CudaError> {
        let mut acc = gpu.window_accumulator(dims, 2)?;
        for &o in &origins {
            acc.add(&Window {
                origin: o,
                size: window,
                values: &values,
                importance: &importance,
            })?;
        }
        acc.finish()
    });
    let b = b?;
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| (x - y).abs() <= 1e-5 * x.abs().max(1.0))
    );
    report(
        &format!("blend {} windows of 96^3", origins.len()),
        cpu,
        on_gpu,
    );
    Ok(())
}

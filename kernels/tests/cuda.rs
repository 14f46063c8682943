//! The CUDA paths against the CPU routines (feature `cuda`). Without NVRTC the first test fails
//! and says how to install it; without a GPU the second checks the error a user gets and stops
//! there, and with one it compares every kernel's result with the CPU's.
#![cfg(feature = "cuda")]

use autoseg_kernels::cuda::{CudaError, Gpu, compile};
use autoseg_kernels::resample::{Order, resample};
use autoseg_kernels::{
    BilateralSigmas, ConfusionMatrix, Connectivity, CrfParams, SurfaceDistances, Window,
    WindowAccumulator, cross_bilateral_grid, dense_crf, gaussian_importance_map, keep_largest,
    keep_largest_in, label_components, squared_distance_to, surface,
};

fn lcg(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn the_kernels_compile_to_ptx() {
    let ptx = compile().unwrap_or_else(|e| panic!("{e}"));
    let text = ptx.to_src();
    for kernel in [
        "confusion_counts",
        "edt_lines",
        "accumulate_window",
        "normalize_windows",
    ] {
        assert!(text.contains(kernel), "{kernel} missing from the PTX");
    }
}

#[test]
fn every_kernel_agrees_with_the_cpu() {
    let gpu = match Gpu::new(0) {
        Ok(gpu) => gpu,
        Err(CudaError::NoDriver) => {
            // No GPU here: what a user sees must say so plainly.
            let message = CudaError::NoDriver.to_string();
            assert!(message.contains("no CUDA driver"), "{message}");
            eprintln!("no GPU on this machine: the GPU comparisons ran only where one is present");
            return;
        }
        Err(other) => panic!("a GPU driver is present but the kernels did not load: {other}"),
    };
    let mut rand = lcg(5);
    let dims = [37, 29, 23];
    let n: usize = dims.iter().product();

    let pred: Vec<u16> = (0..n).map(|_| (rand() * 5.0) as u16).collect();
    for connectivity in [Connectivity::Six, Connectivity::TwentySix] {
        let cpu = label_components(&pred, dims, connectivity);
        let on_gpu = gpu.label_components(&pred, dims, connectivity).unwrap();
        assert_eq!(on_gpu, cpu, "{connectivity:?}");
        let (mut a, mut b) = (pred.clone(), pred.clone());
        keep_largest(&mut a, dims, 3, connectivity);
        keep_largest_in(&mut b, &on_gpu, 3);
        assert_eq!(a, b, "keep largest, {connectivity:?}");
    }
    let reference: Vec<u16> = (0..n).map(|_| (rand() * 5.0) as u16).collect();
    assert_eq!(
        gpu.confusion_matrix(&pred, &reference, 5).unwrap(),
        ConfusionMatrix::of(&pred, &reference, 5)
    );

    for (density, spacing) in [(0.01, [1.0, 1.0, 1.0]), (0.2, [0.7, 1.3, 3.0])] {
        let mask: Vec<bool> = (0..n).map(|_| rand() < density).collect();
        let cpu = squared_distance_to(&mask, dims, spacing);
        let on_gpu = gpu.squared_distance_to(&mask, dims, spacing).unwrap();
        for (a, b) in cpu.iter().zip(&on_gpu) {
            assert!(
                a == b || (a - b).abs() <= 1e-9 * a.max(1.0),
                "EDT: cpu {a} gpu {b}"
            );
        }
    }

    let image: Vec<f32> = (0..n).map(|_| (rand() * 200.0) as f32).collect();
    for (new_dims, orders) in [
        ([50, 20, 23], [Order::Linear; 3]),
        ([30, 40, 9], [Order::Linear, Order::Linear, Order::Nearest]),
        ([12, 29, 40], [Order::Nearest; 3]),
        ([50, 20, 23], [Order::Cubic; 3]),
        ([30, 40, 9], [Order::Cubic, Order::Cubic, Order::Nearest]),
    ] {
        let cpu = resample(&image, dims, new_dims, orders);
        assert_eq!(
            gpu.resample(&image, dims, new_dims, orders).unwrap(),
            cpu,
            "resample {orders:?}"
        );
    }

    let blob: Vec<bool> = (0..n).map(|_| rand() < 0.6).collect();
    assert_eq!(gpu.surface(&blob, dims).unwrap(), surface(&blob, dims));
    let other: Vec<bool> = (0..n).map(|_| rand() < 0.3).collect();
    let spacing = [0.8, 1.2, 2.5];
    let cpu = SurfaceDistances::between(&blob, &other, dims, spacing);
    let on_gpu = gpu.surface_distances(&blob, &other, dims, spacing).unwrap();
    assert_eq!(cpu.pred_to_ref.len(), on_gpu.pred_to_ref.len());
    assert!((cpu.hausdorff(Some(95.0)) - on_gpu.hausdorff(Some(95.0))).abs() < 1e-9);
    assert!((cpu.average(true) - on_gpu.average(true)).abs() < 1e-9);

    let sigmas = BilateralSigmas {
        spatial: 2.0,
        range: 20.0,
    };
    let cpu = cross_bilateral_grid(&image, &image, dims, sigmas);
    let on_gpu = gpu
        .cross_bilateral_grid(&image, &image, dims, sigmas)
        .unwrap();
    for (a, b) in cpu.iter().zip(&on_gpu) {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
            "bilateral grid: cpu {a} gpu {b}"
        );
    }

    let scores: Vec<f32> = (0..2 * n).map(|_| (rand() * 4.0 - 2.0) as f32).collect();
    let params = CrfParams {
        bilateral: BilateralSigmas {
            spatial: 2.0,
            range: 30.0,
        },
        gaussian_sigma: 1.5,
        ..CrfParams::default()
    };
    let cpu = dense_crf(&scores, &image, dims, 2, &params);
    let on_gpu = gpu.dense_crf(&scores, &image, dims, 2, &params).unwrap();
    for (a, b) in cpu.iter().zip(&on_gpu) {
        assert!(
            (a - b).abs() <= 1e-3 * a.abs().max(1.0),
            "CRF: cpu {a} gpu {b}"
        );
    }

    let window = [16, 16, 12];
    let importance = gaussian_importance_map(window, 1.0 / 8.0);
    let mut cpu = WindowAccumulator::new(dims, 3);
    let mut on_gpu = gpu.window_accumulator(dims, 3).unwrap();
    for origin in [[0, 0, 0], [10, 5, 4], [21, 13, 11]] {
        let values: Vec<f32> = (0..importance.len() * 3).map(|_| rand() as f32).collect();
        let w = Window {
            origin,
            size: window,
            values: &values,
            importance: &importance,
        };
        cpu.add(&w);
        on_gpu.add(&w).unwrap();
    }
    let (cpu, on_gpu) = (cpu.finish(), on_gpu.finish().unwrap());
    for (a, b) in cpu.iter().zip(&on_gpu) {
        assert!(
            (a - b).abs() <= 1e-6 * a.abs().max(1.0),
            "blend: cpu {a} gpu {b}"
        );
    }
}

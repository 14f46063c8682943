//! Optimisers and schedules against PyTorch/MONAI (`fixtures/optim/torch_optim.json`):
//! two parameters minimise `sum(a p^2 + b p)` for 6 steps under MONAI's warm-up cosine
//! schedule, and every parameter value after every step agrees within 1e-5.

use std::path::Path;

use autoseg_templates::ComputeDevice;
use autoseg_tuner::optim::{Novograd, OptimizerConfig, Schedule};
use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use serde_json::Value;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/optim/torch_optim.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[derive(Module, Debug)]
struct Quadratic {
    p1: Param<Tensor<1>>,
    p2: Param<Tensor<2>>,
}

fn flat(value: &Value) -> Vec<f32> {
    match value {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        v => vec![v.as_f64().unwrap() as f32],
    }
}

fn vector(value: &Value, device: &Device) -> Tensor<1> {
    Tensor::<1>::from_floats(flat(value).as_slice(), device)
}

fn matrix(value: &Value, device: &Device) -> Tensor<2> {
    vector(value, device).reshape([2, 3])
}

fn loss(model: &Quadratic, coef: &Value, device: &Device) -> Tensor<1> {
    let term1 = model.p1.val().square() * vector(&coef["p1"][0], device)
        + model.p1.val() * vector(&coef["p1"][1], device);
    let term2 = model.p2.val().square() * matrix(&coef["p2"][0], device)
        + model.p2.val() * matrix(&coef["p2"][1], device);
    term1.sum() + term2.sum()
}

fn warmup_cosine() -> Schedule {
    Schedule::WarmupCosine {
        warmup_steps: 2,
        warmup_multiplier: 0.0,
        cycles: 0.5,
        end_lr: 0.0,
    }
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "{what}: ours {got:?}, PyTorch {want:?}"
        );
    }
}

fn check(name: &str, config: OptimizerConfig) {
    for device in ComputeDevice::available() {
        eprintln!("on {device}");
        check_on(name, &config, &device.training_device());
    }
}

fn check_on(name: &str, config: &OptimizerConfig, device: &Device) {
    let data = fixture();
    let (steps, base) = (
        data["steps"].as_u64().unwrap() as usize,
        data["base_lr"].as_f64().unwrap(),
    );
    let mut model = Quadratic {
        p1: Param::from_tensor(vector(&data["init"]["p1"], device)),
        p2: Param::from_tensor(matrix(&data["init"]["p2"], device)),
    };
    let mut optimizer = config.init();
    let schedule = warmup_cosine();
    for (step, want) in data["trajectories"][name]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let grads =
            GradientsParams::from_grads(loss(&model, &data["coef"], device).backward(), &model);
        model = optimizer.step(schedule.lr(base, step, steps), model, grads);
        let p1 = model.p1.val().into_data().try_to_vec::<f32>().unwrap();
        let p2 = model.p2.val().into_data().try_to_vec::<f32>().unwrap();
        assert_close(&p1, &flat(&want["p1"]), &format!("{name} step {step} p1"));
        assert_close(&p2, &flat(&want["p2"]), &format!("{name} step {step} p2"));
    }
}

#[test]
fn adamw_follows_pytorch() {
    let config = OptimizerConfig::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 1e-2,
    };
    check("adamw", config);
}

#[test]
fn nesterov_sgd_follows_pytorch() {
    check("sgd_nesterov", OptimizerConfig::nnunet());
}

#[test]
fn novograd_follows_monai() {
    let novograd = Novograd {
        weight_decay: 1e-3,
        ..Novograd::default()
    };
    check("novograd", OptimizerConfig::Novograd(novograd));
}

#[test]
fn schedules_follow_monai_and_pytorch() {
    let data = fixture();
    let total = data["steps"].as_u64().unwrap() as usize;
    let base = data["base_lr"].as_f64().unwrap();
    let polynomial = Schedule::Polynomial { power: 0.9 };
    for (schedule, key) in [
        (warmup_cosine(), "warmup_cosine_lrs"),
        (polynomial, "polynomial_lrs"),
    ] {
        for (step, want) in data[key].as_array().unwrap().iter().enumerate() {
            let got = schedule.lr(base, step, total);
            assert!(
                (got - want.as_f64().unwrap()).abs() < 1e-12,
                "{key} step {step}: {got} vs {want}"
            );
        }
    }
}

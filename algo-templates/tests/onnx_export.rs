//! ONNX export against ONNX Runtime: each network, with the MONAI fixtures' weights, exported
//! and run by ONNX Runtime (the peer's venv, `../shared/peer/setup.sh --interop`) gives the
//! logits of autoseg's own forward pass within 1e-4 of the largest. Says so and passes where
//! the peer is not installed.

mod common;

use std::path::Path;
use std::process::Command;

use autoseg_templates::ComputeDevice;
use autoseg_templates::export::onnx::model_bytes;
use autoseg_templates::networks::{NetworkConfig, SegResNetDsConfig};
use autoseg_templates::weights;
use common::{
    fixture, fixture_dynunet, fixture_dynunet_2d, fixture_segresnet, read_safetensors, tensor,
};

/// Exports `config` with the fixture `name`'s weights, runs it in ONNX Runtime on the
/// fixture's input and compares with autoseg's forward pass.
fn check(python: &Path, name: &str, config: NetworkConfig) {
    let device = ComputeDevice::Flex.burn_device();
    let weights_file = fixture(&format!("{name}.weights.safetensors"));
    let net = weights::load(config.init(&device).unwrap(), &weights_file).unwrap();
    let (bytes, weight_bytes) = model_bytes(&net, &config).unwrap();
    assert!(weight_bytes > 0 && bytes.len() > weight_bytes);

    let io = read_safetensors(&fixture(&format!("{name}.io.safetensors")));
    let (shape, input) = &io["input"];
    let dir = tempfile::tempdir().unwrap();
    let [model, input_file, output_file] =
        ["model.onnx", "input.f32", "output.f32"].map(|f| dir.path().join(f));
    std::fs::write(&model, &bytes).unwrap();
    let raw: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&input_file, raw).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run_onnx.py");
    let out = Command::new(python)
        .arg(script)
        .args([&model, &input_file])
        .arg(serde_json::to_string(shape).unwrap())
        .arg(&output_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ort_shape: Vec<usize> = serde_json::from_slice(&out.stdout).unwrap();
    let ort: Vec<f32> = std::fs::read(&output_file)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();

    let ours = net.forward(tensor(&io, "input", &device));
    let mut want_shape = ours.dims().to_vec();
    if config.spatial_dims() == 2 {
        want_shape.pop();
    }
    assert_eq!(ort_shape, want_shape, "{name}: output shape");
    let ours = ours.into_data().try_to_vec::<f32>().unwrap();
    let scale = ours.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let worst = (ours.iter().zip(&ort)).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!(
        "{name}: ONNX Runtime within {:.2e} of the largest logit",
        worst / scale
    );
    assert!(
        worst / scale < 1e-4,
        "{name}: max difference {worst} (scale {scale})"
    );
}

#[test]
fn onnx_runtime_runs_every_exported_network_as_autoseg_does() {
    let Some(python) = common::peer::peer_python("onnxruntime") else {
        eprintln!("skipped: no peer venv with onnxruntime (../shared/peer/setup.sh --interop)");
        return;
    };
    let segresnet_2d = SegResNetDsConfig {
        in_channels: 1,
        spatial_dims: 2,
        ..fixture_segresnet()
    };
    let segresnet_aniso = SegResNetDsConfig {
        resolution: Some([1.0, 1.0, 3.0]),
        ..fixture_segresnet()
    };
    let cases = [
        ("dynunet", NetworkConfig::Dynunet(fixture_dynunet())),
        ("dynunet_2d", NetworkConfig::Dynunet(fixture_dynunet_2d(3))),
        (
            "segresnet_ds",
            NetworkConfig::SegresnetDs(fixture_segresnet()),
        ),
        (
            "segresnet_ds_aniso",
            NetworkConfig::SegresnetDs(segresnet_aniso),
        ),
        ("segresnet_ds_2d", NetworkConfig::SegresnetDs(segresnet_2d)),
    ];
    for (name, config) in cases {
        check(&python, name, config);
    }
}

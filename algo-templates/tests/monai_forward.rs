//! The networks against MONAI/PyTorch: the same weights (a MONAI state_dict saved as
//! safetensors by `fixtures/networks/make_fixtures.py`) give the same outputs within 1e-4,
//! and weights saved here carry the same PyTorch names and values.

mod common;

use std::path::Path;

use common::{
    Tensors, fixture, fixture_dynunet, fixture_dynunet_2d, fixture_segresnet, read_safetensors,
    tensor, volume_shape,
};

use autoseg_templates::ComputeDevice;
use autoseg_templates::networks::{NetworkConfig, SegResNetDsConfig, SmallUNet};
use autoseg_templates::ops::{resize_linear, resize_nearest_exact};
use autoseg_templates::weights;
use burn::tensor::{Device, Tensor};

/// Largest difference relative to the reference's largest magnitude.
fn assert_close(got: Tensor<5>, io: &Tensors, name: &str, what: &str) {
    let (shape, want) = &io[name];
    assert_eq!(got.dims(), volume_shape(shape), "{what} {name}: shape");
    let got = got.into_data().try_to_vec::<f32>().unwrap();
    let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    assert!(
        worst / scale < 1e-4,
        "{what} {name}: max difference {worst} (scale {scale})"
    );
}

/// Our saved file holds the reference's tensors (aliases aside), same names, same values.
fn assert_saved_like_reference<M: weights::PytorchWeights>(net: &M, reference: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("net.safetensors");
    weights::save(net, &ours).unwrap();
    let ours = read_safetensors(&ours);
    let mut theirs = read_safetensors(reference);
    theirs.retain(|name, _| !weights::ALIAS_PREFIXES.iter().any(|p| name.starts_with(p)));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    assert!(ours == theirs, "saved values differ from the loaded ones");
}

/// Runs `check` on every device this build can use (flex; libtorch CPU and GPU with `tch`).
fn on_every_device(check: impl Fn(&Device)) {
    for device in ComputeDevice::available() {
        eprintln!("on {device}");
        check(&device.burn_device());
    }
}

fn check_segresnet(name: &str, resolution: Option<[f64; 3]>, device: &Device) {
    let config = SegResNetDsConfig {
        resolution,
        ..fixture_segresnet()
    };
    let path = fixture(&format!("{name}.weights.safetensors"));
    let net = weights::load(config.init(device).unwrap(), &path).unwrap();
    let io = read_safetensors(&fixture(&format!("{name}.io.safetensors")));
    let outputs = net.forward_deep(tensor(&io, "input", device));
    assert_eq!(outputs.len(), 2);
    let mut outputs = outputs.into_iter();
    assert_close(outputs.next().unwrap(), &io, "output", name);
    assert_close(outputs.next().unwrap(), &io, "deep.0", name);
    assert_close(
        net.forward(tensor(&io, "input", device)),
        &io,
        "output",
        name,
    );
    assert_saved_like_reference(&net, &path);
}

#[test]
fn segresnet_ds_matches_monai() {
    on_every_device(|device| check_segresnet("segresnet_ds", None, device));
}

#[test]
fn anisotropic_segresnet_ds_matches_monai() {
    on_every_device(|device| check_segresnet("segresnet_ds_aniso", Some([1.0, 1.0, 3.0]), device));
}

#[test]
fn planar_segresnet_ds_matches_monais_2d_network() {
    on_every_device(|device| {
        let config = SegResNetDsConfig {
            in_channels: 1,
            spatial_dims: 2,
            ..fixture_segresnet()
        };
        let path = fixture("segresnet_ds_2d.weights.safetensors");
        let net = weights::load(config.init(device).unwrap(), &path).unwrap();
        let io = read_safetensors(&fixture("segresnet_ds_2d.io.safetensors"));
        let outputs = net.forward_deep(tensor(&io, "input", device));
        for (output, name) in outputs.into_iter().zip(["output", "deep.0"]) {
            assert_close(output, &io, name, "segresnet_ds_2d");
        }
        assert_saved_like_reference(&net, &path);
    });
}

#[test]
fn planar_dynunet_matches_monais_2d_network() {
    on_every_device(|device| {
        let config = fixture_dynunet_2d(3);
        let path = fixture("dynunet_2d.weights.safetensors");
        let net = weights::load(config.init(device).unwrap(), &path).unwrap();
        let io = read_safetensors(&fixture("dynunet_2d.io.safetensors"));
        let outputs = net.forward_deep(tensor(&io, "input", device));
        for (output, name) in outputs.into_iter().zip(["output", "deep.0"]) {
            assert_close(output, &io, name, "dynunet_2d");
        }
        assert_saved_like_reference(&net, &path);
    });
}

#[test]
fn dynunet_matches_monai_with_its_deep_supervision_heads() {
    on_every_device(|device| {
        let config = fixture_dynunet();
        let path = fixture("dynunet.weights.safetensors");
        // MONAI's state_dict also holds every block a second time under `skip_layers.`.
        assert!(
            read_safetensors(&path)
                .keys()
                .any(|k| k.starts_with("skip_layers."))
        );
        let net = weights::load(config.init(device).unwrap(), &path).unwrap();
        let io = read_safetensors(&fixture("dynunet.io.safetensors"));
        let outputs = net.forward_deep(tensor(&io, "input", device));
        for (output, name) in outputs.into_iter().zip(["output", "deep.0", "deep.1"]) {
            assert_close(output, &io, name, "dynunet");
        }
        assert_saved_like_reference(&net, &path);
        // Behind the `Network` enum the names are the same: no variant name in the paths.
        let wrapped = NetworkConfig::Dynunet(config.clone()).init(device).unwrap();
        let wrapped = weights::load(wrapped, &path).unwrap();
        assert_close(
            wrapped.forward(tensor(&io, "input", device)),
            &io,
            "output",
            "dynunet",
        );
        assert_saved_like_reference(&wrapped, &path);
    });
}

#[test]
fn benchmark_unet_is_the_peers_network() {
    on_every_device(|device| {
        let path = fixture("small_unet.weights.safetensors");
        let net = weights::load(SmallUNet::new(1, 3, device), &path).unwrap();
        let io = read_safetensors(&fixture("small_unet.io.safetensors"));
        assert_close(
            net.forward(tensor(&io, "input", device)),
            &io,
            "output",
            "small_unet",
        );
    });
}

#[test]
fn resizing_matches_torch_interpolate() {
    on_every_device(|device| {
        let io = read_safetensors(&fixture("resize.io.safetensors"));
        let x = tensor(&io, "input", device);
        assert_close(
            resize_linear(x.clone(), [9, 4, 7]),
            &io,
            "linear",
            "trilinear",
        );
        assert_close(
            resize_nearest_exact(x, [3, 12, 4]),
            &io,
            "nearest_exact",
            "nearest-exact",
        );
    });
}

#[test]
fn weights_that_do_not_fit_are_refused_naming_the_file() {
    let device = Device::flex();
    let path = fixture("segresnet_ds.weights.safetensors");
    let other = SegResNetDsConfig {
        init_filters: 8,
        ..fixture_segresnet()
    };
    let err = weights::load(other.init(&device).unwrap(), &path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("segresnet_ds.weights.safetensors"), "{err}");
    let err = weights::load(SmallUNet::new(1, 3, &device), &path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("do not fit"), "{err}");
    let missing = weights::load(
        SmallUNet::new(1, 3, &device),
        Path::new("/nonexistent/w.safetensors"),
    );
    assert!(missing.unwrap_err().to_string().contains("no such file"));
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    let err = weights::load(SmallUNet::new(1, 3, &device), &garbage)
        .unwrap_err()
        .to_string();
    assert!(err.contains("garbage.safetensors"), "{err}");
}

#[test]
fn fine_tuning_starts_from_a_pytorch_checkpoint_and_a_new_head_starts_fresh() {
    let device = ComputeDevice::Flex.burn_device();
    // MONAI's weights nested in a training checkpoint ({"state_dict": ..., "epoch": 3}).
    let checkpoint = fixture("dynunet_2d.trained.pt");
    let (net, report) =
        weights::load_matching(fixture_dynunet_2d(3).init(&device).unwrap(), &checkpoint).unwrap();
    assert!(report.fresh.is_empty(), "{}", report.summary());
    let parameters = report.loaded.len();
    let io = read_safetensors(&fixture("dynunet_2d.io.safetensors"));
    let outputs = net.forward_deep(tensor(&io, "input", &device));
    assert_close(outputs[0].clone(), &io, "output", "from the checkpoint");

    // Four classes where the file has three: the heads start fresh, the rest loads.
    let safetensors = fixture("dynunet_2d.weights.safetensors");
    let (_, report) =
        weights::load_matching(fixture_dynunet_2d(4).init(&device).unwrap(), &safetensors).unwrap();
    let heads = ["deep_supervision_heads.0.conv.", "output_block.conv.conv."];
    assert!(!report.fresh.is_empty());
    for name in &report.fresh {
        assert!(
            heads.iter().any(|h| name.contains(h.trim_end_matches('.'))),
            "{name} started fresh: {}",
            report.summary()
        );
    }
    // The two heads' weights and biases start fresh; every other parameter loads.
    assert_eq!(report.fresh.len(), 4, "{}", report.summary());
    assert_eq!(report.loaded.len() + report.fresh.len(), parameters);
    assert!(report.summary().contains("initialised afresh"));

    // Weights of another network match nothing; a corrupt file is named.
    let other = fixture("small_unet.weights.safetensors");
    let err = weights::load_matching(fixture_dynunet_2d(3).init(&device).unwrap(), &other)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("small_unet") && err.contains("no tensor matches"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("corrupt.pt", &b"PK\x03\x04 not a zip"[..]),
        ("corrupt.safetensors", &b"\x10\0\0\0\0\0\0\0{not json}"[..]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = weights::load_matching(fixture_dynunet_2d(3).init(&device).unwrap(), &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains(name), "{err}");
    }
}

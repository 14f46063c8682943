//! Safetensors weights: loading any bytes into a small DynUNet never panics.

use autoseg_templates::networks::{DynUNetConfig, NetworkConfig};

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut config = DynUNetConfig::new(1, 2);
    config.filters = Some(vec![2, 4, 4, 4, 4]);
    let config = NetworkConfig::Dynunet(config);
    let device = burn::tensor::Device::flex();
    afl::fuzz!(|data: &[u8]| {
        std::fs::write(&path, data).unwrap();
        let network = config.init(&device).unwrap();
        let _ = autoseg_templates::weights::load(network, &path);
    });
}

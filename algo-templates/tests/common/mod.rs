//! Helpers the network tests share: the MONAI fixtures (`fixtures/networks/`) and their
//! tensors.

// Each test binary uses its own share of the helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[path = "../../../tests/common/peer.rs"]
pub mod peer;

use autoseg_templates::networks::{DynUNetConfig, SegResNetDsConfig};
use burn::tensor::{Device, Tensor};

/// A safetensors file's F32 tensors: name -> (shape, values).
pub type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/networks")
        .join(name)
}

pub fn read_safetensors(path: &Path) -> Tensors {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let data = &bytes[8 + header_len..];
    let mut tensors = Tensors::new();
    for (name, entry) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        assert_eq!(entry["dtype"], "F32", "{name}");
        let shape = entry["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let offsets: Vec<usize> = entry["data_offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let values = data[offsets[0]..offsets[1]]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        tensors.insert(name.clone(), (shape, values));
    }
    tensors
}

/// A fixture tensor as a volume: 2D `[n, c, x, y]` ones get a unit z axis, which is how
/// autoseg runs its 2D networks.
pub fn volume_shape(shape: &[usize]) -> [usize; 5] {
    let mut shape = shape.to_vec();
    if shape.len() == 4 {
        shape.push(1);
    }
    shape.try_into().unwrap()
}

pub fn tensor(io: &Tensors, name: &str, device: &Device) -> Tensor<5> {
    let (shape, values) = &io[name];
    let shape = volume_shape(shape);
    Tensor::<1>::from_floats(values.as_slice(), device).reshape(shape)
}

/// The configuration `make_fixtures.py` gives MONAI's SegResNetDS.
pub fn fixture_segresnet() -> SegResNetDsConfig {
    SegResNetDsConfig {
        init_filters: 4,
        blocks_down: vec![1, 2, 2],
        dsdepth: 2,
        ..SegResNetDsConfig::new(2, 3)
    }
}

/// The 3D DynUNet fixture's configuration (as the unit tests' network: an anisotropic third
/// stage, two extra heads).
pub fn fixture_dynunet() -> DynUNetConfig {
    DynUNetConfig {
        kernel_sizes: vec![[3; 3], [3; 3], [3, 3, 1], [3; 3]],
        strides: vec![[1; 3], [2; 3], [2, 2, 1], [2; 3]],
        filters: Some(vec![4, 8, 16, 32]),
        deep_supervision_heads: 2,
        ..DynUNetConfig::new(1, 3)
    }
}

/// The 2D DynUNet fixture's configuration, with `classes` outputs.
pub fn fixture_dynunet_2d(classes: usize) -> DynUNetConfig {
    DynUNetConfig {
        kernel_sizes: vec![[3, 3, 1]; 3],
        strides: vec![[1; 3], [2, 2, 1], [2, 2, 1]],
        filters: Some(vec![4, 8, 16]),
        deep_supervision_heads: 1,
        spatial_dims: 2,
        ..DynUNetConfig::new(2, classes)
    }
}

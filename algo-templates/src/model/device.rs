//! Where networks run: burn's pure-Rust `flex` CPU backend always, and libtorch (CPU, or a
//! CUDA GPU) when autoseg is built with the `tch` feature.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, Tensor};

/// A compute device a user can name (`--device cpu`, `--device tch`, `--device cuda:0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComputeDevice {
    /// burn-flex on the CPU: no native libraries; the default.
    Flex,
    /// libtorch on the CPU (the `tch` feature).
    TchCpu,
    /// libtorch on CUDA GPU `n` (the `tch` feature).
    TchCuda(usize),
}

/// A device name that cannot be used in this build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// Not a device name at all.
    #[error("unknown device `{0}`: use cpu, tch or cuda:N")]
    Unknown(String),
    /// A libtorch device in a build without libtorch.
    #[error("device `{0}` needs libtorch: rebuild autoseg with `--features tch` (see README)")]
    NeedsTch(String),
}

impl FromStr for ComputeDevice {
    type Err = DeviceError;

    fn from_str(name: &str) -> Result<Self, DeviceError> {
        let lower = name.trim().to_ascii_lowercase();
        let device = match lower.as_str() {
            "cpu" | "flex" => ComputeDevice::Flex,
            "tch" | "tch-cpu" | "libtorch" => ComputeDevice::TchCpu,
            "cuda" | "gpu" => ComputeDevice::TchCuda(0),
            other => match other.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => ComputeDevice::TchCuda(n),
                _ => return Err(DeviceError::Unknown(name.to_string())),
            },
        };
        if device != ComputeDevice::Flex && !cfg!(feature = "tch") {
            return Err(DeviceError::NeedsTch(name.to_string()));
        }
        Ok(device)
    }
}

impl fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeDevice::Flex => f.write_str("cpu"),
            ComputeDevice::TchCpu => f.write_str("tch"),
            ComputeDevice::TchCuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl ComputeDevice {
    /// The devices this build can name (CUDA ones only if libtorch is compiled in; whether a
    /// GPU is present shows when it is first used).
    pub fn compiled() -> Vec<ComputeDevice> {
        let mut devices = vec![ComputeDevice::Flex];
        if cfg!(feature = "tch") {
            devices.extend([ComputeDevice::TchCpu, ComputeDevice::TchCuda(0)]);
        }
        devices
    }

    /// The devices usable here: the CPU ones this build has, and the first CUDA GPU when
    /// libtorch finds one. Tests run on each of them.
    pub fn available() -> Vec<ComputeDevice> {
        Self::compiled()
            .into_iter()
            .filter(|d| !d.is_gpu() || d.smoke_test().is_ok())
            .collect()
    }

    /// Whether the device is a GPU (the others compute on this machine's CPU cores).
    pub fn is_gpu(&self) -> bool {
        matches!(self, ComputeDevice::TchCuda(_))
    }

    /// What the device is, in words.
    pub fn describe(&self) -> &'static str {
        match self {
            ComputeDevice::Flex => "burn-flex, pure-Rust CPU backend (default)",
            ComputeDevice::TchCpu => "libtorch 2.9 on the CPU",
            ComputeDevice::TchCuda(_) => "libtorch 2.9 on a CUDA GPU",
        }
    }

    /// The burn device for inference.
    // burn 0.22 deprecates its libtorch backend (see README); it is pinned and kept on purpose.
    #[allow(deprecated)]
    pub fn burn_device(&self) -> Device {
        match self {
            ComputeDevice::Flex => Device::flex(),
            #[cfg(feature = "tch")]
            ComputeDevice::TchCpu => Device::libtorch(),
            #[cfg(feature = "tch")]
            ComputeDevice::TchCuda(n) => Device::libtorch_cuda(*n),
            #[cfg(not(feature = "tch"))]
            _ => unreachable!("libtorch devices cannot be parsed without the tch feature"),
        }
    }

    /// The burn device for training (with automatic differentiation).
    pub fn training_device(&self) -> Device {
        self.burn_device().autodiff()
    }

    /// Runs a small matrix product and its gradient on the device; an error says why the
    /// device cannot be used (libtorch missing at run time, no GPU...).
    pub fn smoke_test(&self) -> Result<(), String> {
        let device = *self;
        std::panic::catch_unwind(move || {
            let dev = device.training_device();
            let a = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &dev).require_grad();
            let b = Tensor::<2>::from_floats([[0.5], [-1.0]], &dev);
            let y = a.clone().matmul(b).sum();
            let value = y
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| format!("{e:?}"))?;
            let grads = y.backward();
            let grad = a
                .grad(&grads)
                .ok_or("no gradient")?
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| format!("{e:?}"))?;
            if value != [-4.0] || grad != [0.5, -1.0, 0.5, -1.0] {
                return Err(format!("wrong results: {value:?}, gradient {grad:?}"));
            }
            Ok(())
        })
        .unwrap_or_else(|panic| {
            let text = panic_message(panic.as_ref());
            Err(if text.is_empty() {
                "the backend panicked".into()
            } else {
                text
            })
        })
    }
}

/// What a panic said, if it said it in a string (empty otherwise).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_flex_computes_value_and_gradient() {
        assert_eq!("cpu".parse(), Ok(ComputeDevice::Flex));
        assert_eq!("flex".parse::<ComputeDevice>().unwrap().to_string(), "cpu");
        assert!(matches!(
            "tpu".parse::<ComputeDevice>(),
            Err(DeviceError::Unknown(_))
        ));
        if cfg!(feature = "tch") {
            assert_eq!("cuda:1".parse(), Ok(ComputeDevice::TchCuda(1)));
        } else {
            assert!(matches!(
                "cuda:1".parse::<ComputeDevice>(),
                Err(DeviceError::NeedsTch(_))
            ));
        }
        assert_eq!(ComputeDevice::Flex.smoke_test(), Ok(()));
    }
}

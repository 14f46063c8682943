//! Seeded random draws. burn's backends (flex and libtorch alike) draw from one random
//! generator per process, so a seeded draw is reproducible only if no other thread draws
//! between the seeding and the last value: every draw the crate makes, its tests' included,
//! runs inside [`seeded`].

use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

static DRAWS: Mutex<()> = Mutex::new(());

/// Runs `draw` with the backend's generator seeded to `seed` and no other draw in between.
/// burn draws a parameter lazily, at its first use: a module drawn here must be
/// [`materialized`] inside `draw`.
pub(crate) fn seeded<R>(device: &Device, seed: u64, draw: impl FnOnce() -> R) -> R {
    let _guard = DRAWS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    draw()
}

/// `module` with every parameter drawn now.
pub(crate) fn materialized<M: Module>(module: M) -> M {
    struct Materialize;
    impl ModuleVisitor for Materialize {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Materialize);
    module
}

//! Batches of augmented patches, made on worker threads (rayon) ahead of the model.
//!
//! Batch `i` is a pure function of the seed and `i` (each patch draws from its own random
//! stream), so a run is reproducible however the threads are scheduled, and a resumed run
//! continues with the batches it would have had.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use crate::rng::Rng;
use rayon::prelude::*;

use super::prepared::PreparedCase;
use super::sampler::{ClassLocations, Patch, Sampling, extract};
use crate::transforms::augment::AugmentConfig;

/// The training cases and how patches are drawn from them.
pub struct TrainingSet {
    /// The cases with their class locations.
    pub cases: Vec<(PreparedCase, ClassLocations)>,
    /// Patch size, x, y, z.
    pub patch: [usize; 3],
    /// Patches per batch.
    pub batch_size: usize,
    /// Where patches are centred.
    pub sampling: Sampling,
    /// Augmentation.
    pub augment: AugmentConfig,
    /// Rotate about z only (2D networks).
    pub planar: bool,
    /// The run's seed.
    pub seed: u64,
}

/// A batch: images `[b, c, x, y, z]` and class ids `[b, x, y, z]`, z fastest.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Patch size.
    pub patch: [usize; 3],
    /// Image channels.
    pub channels: usize,
    /// Patches.
    pub size: usize,
    /// Intensities.
    pub image: Vec<f32>,
    /// Class ids.
    pub label: Vec<u8>,
}

impl TrainingSet {
    /// Indexes prepared cases for sampling.
    pub fn new(cases: Vec<PreparedCase>, patch: [usize; 3], batch_size: usize, seed: u64) -> Self {
        let cases = cases
            .into_par_iter()
            .map(|case| {
                let locations = ClassLocations::of(&case);
                (case, locations)
            })
            .collect();
        TrainingSet {
            cases,
            patch,
            batch_size,
            sampling: Sampling::default(),
            augment: AugmentConfig::default(),
            planar: false,
            seed,
        }
    }

    /// One patch, drawn from stream `stream`.
    fn patch(&self, stream: u64) -> Patch {
        let mut rng = Rng::stream(self.seed, stream);
        let (case, locations) = &self.cases[rng.below(self.cases.len())];
        let centre = self.sampling.centre(case, locations, self.patch, &mut rng);
        let transform = self.augment.spatial(&mut rng, self.planar);
        let mut patch = extract(case, centre, self.patch, transform.as_ref());
        self.augment.apply(&mut patch, &mut rng);
        patch
    }

    /// Batch number `index` of the run.
    pub fn batch(&self, index: u64) -> Batch {
        let first = index * self.batch_size as u64;
        let patches: Vec<Patch> = (0..self.batch_size as u64)
            .into_par_iter()
            .map(|j| self.patch(first + j))
            .collect();
        let channels = self.cases[0].0.header.channels;
        Batch {
            patch: self.patch,
            channels,
            size: patches.len(),
            image: patches
                .iter()
                .flat_map(|p| p.image.iter().copied())
                .collect(),
            label: patches
                .iter()
                .flat_map(|p| p.label.iter().copied())
                .collect(),
        }
    }
}

/// Batches `first..first + count` made ahead, at most `depth` waiting.
pub struct Prefetcher {
    receiver: Receiver<Batch>,
    worker: Option<JoinHandle<()>>,
}

impl Prefetcher {
    /// Starts making batches on a background thread.
    pub fn start(set: Arc<TrainingSet>, first: u64, count: u64, depth: usize) -> Self {
        let (sender, receiver) = sync_channel(depth.max(1));
        let worker = std::thread::spawn(move || {
            for index in first..first + count {
                if sender.send(set.batch(index)).is_err() {
                    return; // the training loop stopped early
                }
            }
        });
        Prefetcher {
            receiver,
            worker: Some(worker),
        }
    }

    /// The next batch (waits if it is not ready); `None` after the last.
    pub fn next_batch(&mut self) -> Option<Batch> {
        self.receiver.recv().ok()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing the channel stops the worker at its next send.
        let (_, closed) = sync_channel(1);
        self.receiver = closed;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

//! How a network's channels become one class index per voxel.

use super::RegionPlan;

/// How a network's output channels become probabilities and one class index per voxel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decoding {
    /// Mutually exclusive classes, background first: softmax, then the argmax.
    #[default]
    Argmax,
    /// One channel per region: sigmoid, then class `i + 1` where region `i` is the last
    /// whose probability passes 0.5, else 0 (nnU-Net's `regions_class_order` rule).
    Regions,
}

/// The probability above which a region holds a voxel.
pub const REGION_THRESHOLD: f32 = 0.5;

impl Decoding {
    /// The decoding of a bundle with these regions (none: classes).
    pub fn of(regions: Option<&RegionPlan>) -> Decoding {
        match regions {
            Some(_) => Decoding::Regions,
            None => Decoding::Argmax,
        }
    }

    /// A channel's probability where the network saw nothing (outside the crop to the
    /// image's non-zero voxels): background holds those voxels, no region does.
    pub fn outside(self, channel: usize) -> f32 {
        match self {
            Decoding::Argmax if channel == 0 => 1.0,
            _ => 0.0,
        }
    }

    /// Class indices decoded from `channels` channels offered one at a time.
    pub fn start(self, voxels: usize) -> ClassDecoder {
        match self {
            Decoding::Argmax => ClassDecoder::Argmax(vec![(f32::NEG_INFINITY, 0); voxels]),
            Decoding::Regions => ClassDecoder::Regions(vec![0; voxels]),
        }
    }

    /// The class index of each voxel of `[channels, voxels]` probabilities.
    pub fn classes(self, probabilities: &[f32], channels: usize) -> Vec<u8> {
        let n = probabilities.len() / channels.max(1);
        let mut decoder = self.start(n);
        for k in 0..channels {
            decoder.offer(k, &probabilities[k * n..(k + 1) * n]);
        }
        decoder.classes()
    }

    /// The classes a map decoded from `channels` channels can hold, background included.
    pub fn class_count(self, channels: usize) -> usize {
        match self {
            Decoding::Argmax => channels,
            Decoding::Regions => channels + 1,
        }
    }
}

/// Channels offered one at a time, in order, decoded into class indices without holding
/// more than one channel: each voxel's best value and class (argmax, the first on ties), or
/// its class so far (regions, later over earlier).
pub enum ClassDecoder {
    /// Best probability and its class per voxel.
    Argmax(Vec<(f32, u8)>),
    /// The class so far per voxel.
    Regions(Vec<u8>),
}

impl ClassDecoder {
    /// Channel `k`'s values, one per voxel; channels come in order, `k` fits in a byte.
    pub fn offer(&mut self, k: usize, values: &[f32]) {
        match self {
            ClassDecoder::Argmax(best) => {
                for (b, &p) in best.iter_mut().zip(values) {
                    if p > b.0 {
                        *b = (p, k as u8);
                    }
                }
            }
            ClassDecoder::Regions(classes) => {
                for (c, &p) in classes.iter_mut().zip(values) {
                    if p > REGION_THRESHOLD {
                        *c = k as u8 + 1;
                    }
                }
            }
        }
    }

    /// Each voxel's class index.
    pub fn classes(self) -> Vec<u8> {
        match self {
            ClassDecoder::Argmax(best) => best.into_iter().map(|(_, k)| k).collect(),
            ClassDecoder::Regions(classes) => classes,
        }
    }
}

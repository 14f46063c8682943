//! What a label map's raw values hold, scanned in one pass before they are trusted as class
//! ids: counts per id, and the first voxel that is no id at all.

use crate::error::LabelError;

/// What a label map's raw values hold: class ids and anything that is not one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelScan {
    /// Voxels per class id, for ids that appear (index = id).
    pub counts: Vec<u64>,
    /// NaN or infinite voxels.
    pub non_finite: u64,
    /// Finite voxels with a fractional part.
    pub non_integer: u64,
    /// Negative integer voxels.
    pub negative: u64,
    /// Integers above 65535.
    pub too_large: u64,
    /// The first offending voxel: its linear index and value.
    pub first_bad: Option<(usize, f32)>,
}

impl LabelScan {
    /// Scans raw label values in one pass.
    pub fn of(values: &[f32]) -> LabelScan {
        let mut scan = LabelScan::default();
        for (index, &v) in values.iter().enumerate() {
            // Fast path: a class id (the cast saturates, and NaN becomes 0, so both fail here).
            let id = v as u32;
            if id as f32 == v && id <= u16::MAX as u32 {
                let id = id as usize;
                if id >= scan.counts.len() {
                    scan.counts.resize(id + 1, 0);
                }
                scan.counts[id] += 1;
                continue;
            }
            let bad = if !v.is_finite() {
                scan.non_finite += 1;
                true
            } else if v.fract() != 0.0 {
                scan.non_integer += 1;
                true
            } else if v < 0.0 {
                scan.negative += 1;
                true
            } else if v > u16::MAX as f32 {
                scan.too_large += 1;
                true
            } else {
                let id = v as usize;
                if id >= scan.counts.len() {
                    scan.counts.resize(id + 1, 0);
                }
                scan.counts[id] += 1;
                false
            };
            if bad && scan.first_bad.is_none() {
                scan.first_bad = Some((index, v));
            }
        }
        scan
    }

    /// The class ids present.
    pub fn present(&self) -> Vec<u16> {
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(id, _)| id as u16)
            .collect()
    }

    /// The first reason these values are not a label map.
    pub fn error(&self, dims: [usize; 3]) -> Option<LabelError> {
        let (index, value) = self.first_bad?;
        let voxel = [
            index % dims[0],
            index / dims[0] % dims[1],
            index / (dims[0] * dims[1]) % dims[2],
        ];
        Some(if self.non_finite > 0 && !value.is_finite() {
            LabelError::NonFinite {
                count: self.non_finite,
                voxel,
            }
        } else if self.non_integer > 0 && value.is_finite() && value.fract() != 0.0 {
            LabelError::NonInteger {
                count: self.non_integer,
                value,
                voxel,
            }
        } else if self.negative > 0 && value < 0.0 {
            LabelError::Negative {
                count: self.negative,
                value,
                voxel,
            }
        } else {
            LabelError::TooLarge {
                count: self.too_large,
                value,
                voxel,
            }
        })
    }
}

/// Label ids as runs, the way a reader scans them: "1-1001, 1004, 1036-2001" (FreeSurfer
/// codes leave thousands of ids unused, too many to list one by one). `ids` ascending.
pub fn id_ranges(ids: impl IntoIterator<Item = u16>) -> String {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for id in ids {
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(id) => *end = id,
            _ => runs.push((id, id)),
        }
    }
    let run = |&(start, end): &(u16, u16)| match end - start {
        0 => start.to_string(),
        1 => format!("{start}, {end}"),
        _ => format!("{start}-{end}"),
    };
    runs.iter().map(run).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_said_as_runs() {
        let mut ids: Vec<u16> = (1..=1001).collect();
        ids.push(1004);
        ids.extend(1036..=2001);
        ids.extend([2004, 2005]);
        assert_eq!(id_ranges(ids), "1-1001, 1004, 1036-2001, 2004, 2005");
        assert_eq!(id_ranges([]), "");
        assert_eq!(id_ranges([0, 65535]), "0, 65535");
        assert_eq!(id_ranges([65534, 65535]), "65534, 65535");
    }
}

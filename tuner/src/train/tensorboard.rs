//! TensorBoard event files: a run's per-epoch figures (what `metrics.csv` holds) as scalars in
//! `B/logs/`, so `tensorboard --logdir W` shows every bundle's curves (and a tuning folder's,
//! one run per trial) the way MONAI and nnU-Net users watch theirs.
//!
//! The format is TensorFlow's: TFRecord frames (length, masked CRC-32C of the length, an
//! `Event` protobuf, masked CRC-32C of the data), the first event naming the file version.
//! Each session starts the file again from the run's history, atomically, then appends an
//! epoch at a time: a run killed anywhere and resumed leaves every epoch in it once, under the
//! same file name (which need only contain `tfevents` for TensorBoard to read it).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use autoseg_datasets::Bundle;
use prost::Message;

use super::TrainError;
use super::checkpoint::EpochRecord;

/// The event file's name in `B/logs/`.
pub const EVENT_FILE: &str = "events.out.tfevents.autoseg";

/// TensorFlow's `Event` (the fields a scalar log uses).
#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// TensorFlow's `Summary`: tagged values.
#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// TensorFlow's `Summary.Value`, as a simple scalar. The value is a member of a `oneof`
/// there, so it is written even when zero (a plain proto3 float at 0 would be left out, and
/// the reader would drop the point).
#[derive(Clone, PartialEq, Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
}

/// A run's open event file.
pub struct EventLog {
    path: PathBuf,
    file: File,
    /// The label id of each class (background first): Dice tags name the label.
    labels: Vec<u16>,
}

impl EventLog {
    /// Writes the event file anew with the epochs of `history` and opens it for the next.
    pub fn start(
        bundle: &Path,
        history: &[EpochRecord],
        labels: &[u16],
    ) -> Result<EventLog, TrainError> {
        let dir = Bundle::new(bundle).logs();
        let path = dir.join(EVENT_FILE);
        let io = |source| TrainError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let version = Event {
            wall_time: now(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        };
        let mut bytes = frame(&version.encode_to_vec());
        for record in history {
            bytes.extend(frame(&epoch_event(record, labels).encode_to_vec()));
        }
        super::atomic_write(&path, &bytes)?;
        let file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        Ok(EventLog {
            path,
            file,
            labels: labels.to_vec(),
        })
    }

    /// Appends one epoch's scalars.
    pub fn append(&mut self, record: &EpochRecord) -> Result<(), TrainError> {
        let bytes = frame(&epoch_event(record, &self.labels).encode_to_vec());
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.flush())
            .map_err(|source| TrainError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// One epoch's scalars, at its (1-based) epoch as the step.
fn epoch_event(record: &EpochRecord, labels: &[u16]) -> Event {
    let value = |tag: String, v: f64| SummaryValue {
        tag,
        simple_value: Some(v as f32),
    };
    let mut values = vec![
        value("loss/train".into(), record.loss),
        value("learning_rate".into(), record.learning_rate),
        value("time/epoch_seconds".into(), record.seconds),
        value("time/validation_seconds".into(), record.validation_seconds),
        value("time/data_wait_seconds".into(), record.data_wait_seconds),
    ];
    if let Some(dice) = &record.dice {
        if let Some(mean) = super::mean_dice(dice) {
            values.push(value("dice/mean".into(), mean));
        }
        for (k, d) in dice.iter().enumerate().filter(|(_, d)| !d.is_nan()) {
            let label = labels.get(k + 1).map_or(k + 1, |&l| l as usize);
            values.push(value(format!("dice/label_{label}"), *d));
        }
    }
    Event {
        wall_time: now(),
        step: record.epoch as i64,
        what: Some(What::Summary(Summary { value: values })),
    }
}

/// A TFRecord frame around `data`.
fn frame(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend(length);
    out.extend(masked_crc(&length).to_le_bytes());
    out.extend(data);
    out.extend(masked_crc(data).to_le_bytes());
    out
}

/// TFRecord's masked CRC-32C.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the frames back, checking both CRCs, and decodes each event.
    fn events(bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (length, tail) = rest.split_at(8);
            assert_eq!(masked_crc(length).to_le_bytes(), tail[..4]);
            let n = u64::from_le_bytes(length.try_into().unwrap()) as usize;
            let data = &tail[4..4 + n];
            assert_eq!(masked_crc(data).to_le_bytes(), tail[4 + n..8 + n]);
            out.push(Event::decode(data).unwrap());
            rest = &tail[8 + n..];
        }
        out
    }

    fn record(epoch: usize, dice: Option<Vec<f64>>) -> EpochRecord {
        EpochRecord {
            epoch,
            loss: 1.0 / epoch as f64,
            learning_rate: 0.01,
            dice,
            seconds: 2.0,
            validation_seconds: 0.5,
            data_wait_seconds: 0.1,
        }
    }

    #[test]
    fn a_restarted_log_holds_every_epoch_once() {
        // CRC-32C's check value, masked as TensorFlow's crc32c.Mask does it.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        let dir = tempfile::tempdir().unwrap();
        let first = [record(1, None), record(2, Some(vec![0.5, f64::NAN]))];
        let mut log = EventLog::start(dir.path(), &first[..1], &[0, 7, 9]).unwrap();
        log.append(&first[1]).unwrap();
        // Killed before a third epoch's line; the next session starts from the history.
        let mut log = EventLog::start(dir.path(), &first, &[0, 7, 9]).unwrap();
        log.append(&record(3, Some(vec![0.75, 0.0]))).unwrap();
        let bytes = std::fs::read(dir.path().join("logs").join(EVENT_FILE)).unwrap();
        let events = events(&bytes);
        assert_eq!(
            events[0].what,
            Some(What::FileVersion("brain.Event:2".into()))
        );
        let steps: Vec<i64> = events[1..].iter().map(|e| e.step).collect();
        assert_eq!(steps, [1, 2, 3]);
        let Some(What::Summary(last)) = &events[3].what else {
            panic!("no summary")
        };
        let tags: Vec<(&str, f32)> = (last.value.iter())
            .map(|v| (v.tag.as_str(), v.simple_value.unwrap()))
            .collect();
        // A Dice of 0 is a point too.
        assert!(tags.contains(&("dice/label_9", 0.0)), "{tags:?}");
        assert!(tags.contains(&("dice/mean", 0.375)), "{tags:?}");
        let Some(What::Summary(second)) = &events[2].what else {
            panic!("no summary")
        };
        // A class in no validation case (NaN) is left out, not logged as NaN.
        assert!(second.value.iter().all(|v| v.tag != "dice/label_9"));
    }
}

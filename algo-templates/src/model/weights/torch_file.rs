//! Writing a `state_dict` as `torch.save` does (PyTorch's zip format, pickle protocol 2), so
//! `torch.load(path, weights_only=True)` and MONAI's `CheckpointLoader` read it. The pickle
//! uses only what PyTorch's safe unpickler allows: a dict of `torch._utils._rebuild_tensor_v2`
//! calls on `FloatStorage`s named by persistent ids, one storage per zip entry. Names that
//! alias one tensor share its storage, as PyTorch's own files do.

use std::io::Write;

use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

/// One tensor of the dict: its name, its shape (C order) and its storage's index.
pub struct Entry {
    /// The parameter's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Which storage holds its values.
    pub storage: usize,
}

/// The folder inside the archive (`torch.save` uses the file's stem; any name loads).
const ARCHIVE: &str = "archive";
/// PyTorch's format version for zip files.
const VERSION: &[u8] = b"3\n";
/// PyTorch aligns entries so storages can be memory-mapped.
const ALIGNMENT: u16 = 64;

/// The file's bytes: `storages` are little-endian f32 values; every entry's shape must
/// cover its storage.
pub fn state_dict_bytes(entries: &[Entry], storages: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .with_alignment(ALIGNMENT)
        .large_file(storages.iter().map(Vec::len).sum::<usize>() > u32::MAX as usize / 2);
    let mut put = |name: String, bytes: &[u8]| -> std::io::Result<()> {
        zip.start_file(name, options)?;
        zip.write_all(bytes)
    };
    put(format!("{ARCHIVE}/data.pkl"), &pickle(entries, storages))?;
    put(format!("{ARCHIVE}/byteorder"), b"little")?;
    for (key, storage) in storages.iter().enumerate() {
        put(format!("{ARCHIVE}/data/{key}"), storage)?;
    }
    put(format!("{ARCHIVE}/version"), VERSION)?;
    Ok(zip.finish()?.into_inner())
}

/// The pickle of `{name: tensor}` in protocol 2.
fn pickle(entries: &[Entry], storages: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Pickle(vec![0x80, 2]); // PROTO 2
    p.global("collections", "OrderedDict");
    p.0.extend([b')', b'R']); // EMPTY_TUPLE, REDUCE: OrderedDict()
    p.0.push(b'('); // MARK
    for entry in entries {
        p.string(&entry.name);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.0.push(b'(');
        // The persistent id: ("storage", FloatStorage, key, location, numel).
        p.0.push(b'(');
        p.string("storage");
        p.global("torch", "FloatStorage");
        p.string(&entry.storage.to_string());
        p.string("cpu");
        p.int(storages[entry.storage].len() / 4);
        p.0.extend([b't', b'Q']); // TUPLE, BINPERSID
        p.int(0); // storage offset
        p.tuple(&entry.shape);
        p.tuple(&contiguous_strides(&entry.shape));
        p.0.push(0x89); // NEWFALSE: requires_grad
        p.global("collections", "OrderedDict");
        p.0.extend([b')', b'R']); // backward hooks: OrderedDict()
        p.0.extend([b't', b'R']); // TUPLE, REDUCE
    }
    p.0.extend([b'u', b'.']); // SETITEMS, STOP
    p.0
}

/// C-order strides of `shape`.
fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// Pickle opcodes, appended.
struct Pickle(Vec<u8>);

impl Pickle {
    /// GLOBAL `module.name`.
    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend(format!("{module}\n{name}\n").bytes());
    }

    /// BINUNICODE.
    fn string(&mut self, text: &str) {
        self.0.push(b'X');
        self.0.extend((text.len() as u32).to_le_bytes());
        self.0.extend(text.bytes());
    }

    /// BININT, or LONG1 past 31 bits.
    fn int(&mut self, value: usize) {
        match i32::try_from(value) {
            Ok(v) => {
                self.0.push(b'J');
                self.0.extend(v.to_le_bytes());
            }
            Err(_) => {
                self.0.extend([0x8a, 9]); // LONG1, 9 bytes (two's complement, positive)
                self.0.extend((value as u64).to_le_bytes());
                self.0.push(0);
            }
        }
    }

    /// MARK, the integers, TUPLE.
    fn tuple(&mut self, values: &[usize]) {
        self.0.push(b'(');
        for &v in values {
            self.int(v);
        }
        self.0.push(b't');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_are_c_order_and_the_archive_holds_every_storage() {
        assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(contiguous_strides(&[]), Vec::<usize>::new());
        let storages = vec![vec![0u8; 24], vec![0u8; 4]];
        let entries = [
            Entry {
                name: "a.weight".into(),
                shape: vec![2, 3],
                storage: 0,
            },
            Entry {
                name: "alias.weight".into(),
                shape: vec![2, 3],
                storage: 0,
            },
            Entry {
                name: "a.bias".into(),
                shape: vec![1],
                storage: 1,
            },
        ];
        let bytes = state_dict_bytes(&entries, &storages).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().to_string()).collect();
        for name in [
            "archive/data.pkl",
            "archive/data/0",
            "archive/data/1",
            "archive/version",
        ] {
            assert!(names.iter().any(|n| n == name), "{names:?}");
        }
        assert_eq!(zip.by_name("archive/data/0").unwrap().size(), 24);
    }
}

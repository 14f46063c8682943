//! Writes the fuzz targets' seeds into `fuzz/seeds/<target>/`: the regression corpus of
//! hostile files (tests/common/hostile.rs, shared with the tests), small healthy files made
//! here, and the real files named on the command line (`--nifti`, `--text TARGET`), each
//! under AFL's 1 MB limit.

#[path = "../../../tests/common/hostile.rs"]
#[allow(dead_code)]
mod hostile;

use std::path::{Path, PathBuf};

use autoseg_datasets::phantom::{PhantomSpec, generate_case};

/// AFL refuses seeds larger than this.
const MAX_SEED: usize = 1 << 20;

fn put(dir: &Path, name: &str, bytes: &[u8]) {
    if bytes.len() <= MAX_SEED {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: seeds OUT_DIR [FILES...]"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let spec = PhantomSpec {
        shape: [8, 8, 6],
        ..PhantomSpec::default()
    };
    let (image, label) = generate_case(&spec, 0);
    let (plain, packed, labels) = (
        tmp.path().join("i.nii"),
        tmp.path().join("i.nii.gz"),
        tmp.path().join("l.nii.gz"),
    );
    image.write(&plain).unwrap();
    image.write(&packed).unwrap();
    label.write(&labels).unwrap();
    let healthy = std::fs::read(&plain).unwrap();
    let nifti = out.join("nifti");
    put(&nifti, "phantom.nii", &healthy);
    put(&nifti, "phantom.nii.gz", &std::fs::read(&packed).unwrap());
    put(&nifti, "label.nii.gz", &std::fs::read(&labels).unwrap());
    for h in hostile::corpus(&healthy) {
        put(&nifti, h.file, &h.bytes);
    }
    // Real files: `--nifti FILE` or `--text TARGET FILE`.
    let args: Vec<String> = std::env::args().skip(2).collect();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let (target, file) = match flag.as_str() {
            "--nifti" => ("nifti", rest.next()),
            "--text" => (rest.next().map_or("", String::as_str), rest.next()),
            other => panic!("unknown argument {other}"),
        };
        let file = Path::new(file.expect("a file after the flag"));
        let name = file.file_name().unwrap().to_str().unwrap();
        put(&out.join(target), name, &std::fs::read(file).unwrap());
    }
    put(
        &out.join("datalist"),
        "nested.json",
        format!("{{\"training\": {}", "[".repeat(200)).as_bytes(),
    );
    put(
        &out.join("task"),
        "nested.yaml",
        format!("datalist: {}", "[".repeat(200)).as_bytes(),
    );
}

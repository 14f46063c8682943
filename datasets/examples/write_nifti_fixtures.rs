//! Writes the files that fixtures/nifti/make.sh has nibabel read. Usage: write_nifti_fixtures DIR

#[path = "../tests/support/fixture_files.rs"]
mod fixture_files;

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .expect("usage: write_nifti_fixtures DIR");
    std::fs::create_dir_all(&dir).unwrap();
    for name in fixture_files::write_all(dir.as_ref()) {
        println!("{name}");
    }
}

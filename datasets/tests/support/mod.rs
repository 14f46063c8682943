pub mod fixture_files;

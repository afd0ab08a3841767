//! Locating the Sightline binaries in the cargo target dir.
//!
//! A test executable lives in `<target>/<profile>/deps/<test>-<hash>`; the binaries
//! built by `cargo build --bins` are in `<target>/<profile>/`. `SIGHTLINE_BIN_DIR`
//! overrides the directory (e.g. to test release builds).

use std::path::PathBuf;

/// Directory holding `sightline-collector` and `sightline-agent`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SIGHTLINE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("path of the running test executable");
    let deps = exe.parent().expect("test executable has a parent dir");
    // `.../debug/deps/<test>` → `.../debug`; tolerate being run from `.../debug` directly.
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps dir has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// Path of the binary `name`; panics with the build command when it is missing.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} not found: build the binaries first: cargo build --bins \
         (with the same CARGO_TARGET_DIR and profile as the tests)",
        path.display()
    );
    path
}

/// `sightline-collector`.
pub fn collector() -> PathBuf {
    binary("sightline-collector")
}

/// `sightline-agent`.
pub fn agent() -> PathBuf {
    binary("sightline-agent")
}

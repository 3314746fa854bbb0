//! Inspection of every file in the system library directory: each one is classified (a plugin,
//! or not, with a reason) and none makes the inspector panic.

use host_loader::inspect::inspect_bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const LIB_DIR: &str = "/usr/lib/x86_64-linux-gnu";

fn regular_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            regular_files(&entry.path(), out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

#[test]
fn every_file_in_the_system_library_dir_is_classified_without_panicking() {
    let dir = Path::new(LIB_DIR);
    if !dir.is_dir() {
        eprintln!("SKIPPED: {LIB_DIR} does not exist on this machine");
        return;
    }
    let mut files = Vec::new();
    regular_files(dir, &mut files);
    let mut by_code: BTreeMap<&'static str, usize> = BTreeMap::new();
    for file in &files {
        let Ok(bytes) = host_loader::plugin::read_bounded(file) else {
            continue;
        };
        let code = match inspect_bytes(file, &bytes) {
            Ok(_) => "PLUGIN",
            Err(e) => e.code(),
        };
        *by_code.entry(code).or_default() += 1;
    }
    eprintln!("classified {} files: {by_code:?}", files.len());
    assert!(
        by_code.get("NOT_A_PLUGIN").copied().unwrap_or(0) > 10,
        "{by_code:?}"
    );
    assert_eq!(
        by_code.get("PLUGIN"),
        None,
        "no system library carries a plugin manifest"
    );
}

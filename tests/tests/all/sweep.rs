//! Inspection of every file in the system library directory: each one is classified (a plugin,
//! or not, with a reason and a stable code) and none makes the inspector panic or run long.
//! Every file that parses as a shared object for this host also goes through the hardening
//! and import analysis, so the whole parser meets hundreds of real, varied objects.

use host_loader::elf::ElfView;
use host_loader::inspect::{inspect_bytes, static_findings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LIB_DIR: &str = "/usr/lib/x86_64-linux-gnu";

/// Far above what any file takes (milliseconds); a file over it is a hang, not slowness.
const PER_FILE_BOUND: Duration = Duration::from_secs(10);

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
        integration_tests::skip(&format!("{LIB_DIR} does not exist on this machine"));
        return;
    }
    let mut files = Vec::new();
    regular_files(dir, &mut files);
    let mut by_code: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut analysed = 0usize;
    let mut findings: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut slowest = (Duration::ZERO, PathBuf::new());
    let mut panics = Vec::new();
    for file in &files {
        let Ok(bytes) = host_loader::plugin::read_bounded(file) else {
            continue;
        };
        let start = Instant::now();
        let outcome = std::panic::catch_unwind(|| {
            let code = match inspect_bytes(file, &bytes) {
                Ok(_) => "PLUGIN",
                Err(e) => {
                    assert!(
                        !e.to_string().is_empty(),
                        "{}: empty reason",
                        file.display()
                    );
                    e.code()
                }
            };
            let found = ElfView::parse(&bytes)
                .ok()
                .and_then(|view| static_findings(&view, &[]).ok());
            (code, found)
        });
        let elapsed = start.elapsed();
        if elapsed > slowest.0 {
            slowest = (elapsed, file.clone());
        }
        match outcome {
            Ok((code, found)) => {
                *by_code.entry(code).or_default() += 1;
                if let Some(found) = found {
                    analysed += 1;
                    for finding in found {
                        *findings.entry(finding.code).or_default() += 1;
                    }
                }
            }
            Err(_) => panics.push(file.clone()),
        }
    }
    eprintln!(
        "classified {} files: {by_code:?}; {analysed} analysed for hardening and imports: {findings:?}; slowest {:?} ({})",
        files.len(),
        slowest.0,
        slowest.1.display()
    );
    assert_eq!(panics, Vec::<PathBuf>::new(), "the inspector panicked");
    assert!(
        slowest.0 < PER_FILE_BOUND,
        "{} took {:?}",
        slowest.1.display(),
        slowest.0
    );
    assert!(
        by_code.get("NOT_A_PLUGIN").copied().unwrap_or(0) > 10,
        "{by_code:?}"
    );
    assert!(analysed > 10, "{analysed} shared objects analysed");
    assert_eq!(
        by_code.get("PLUGIN"),
        None,
        "no system library carries a plugin manifest"
    );
}

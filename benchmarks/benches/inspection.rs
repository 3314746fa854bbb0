//! Static inspection throughput (SPEC §13) over every shared object in
//! `/usr/lib/x86_64-linux-gnu`: `inspect` (read + inspect each file; a file that is not a plugin
//! is an error, which is its classification) and `full_analysis` (the same, plus the hardening
//! and import analysis, call-site scan included, on every file, as the fuzz target and the
//! sweep do) vs reading and SHA-256 hashing each file.
//!
//! Writes the corpus size to `<criterion>/inspection/corpus.json`, from which `bench-report`
//! derives files/s.

use benchmarks::{SHARED_OBJECT_DIR, criterion_dir, read_and_hash, shared_objects};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use host_loader::inspect::inspect_bytes;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .sample_size(10)
}

/// Bytes read and plugins found by one inspection pass.
fn inspect_all(files: &[PathBuf]) -> (u64, usize) {
    let mut bytes = 0;
    let mut plugins = 0;
    for path in files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        bytes += data.len() as u64;
        if black_box(inspect_bytes(path, &data)).is_ok() {
            plugins += 1;
        }
    }
    (bytes, plugins)
}

/// Bytes read by one pass of the whole static analysis (`inspect::exercise`) over every file.
fn analyze_all(files: &[PathBuf]) -> u64 {
    let mut bytes = 0;
    for path in files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        bytes += data.len() as u64;
        let _ = black_box(host_loader::inspect::exercise(&data));
    }
    bytes
}

fn read_and_hash_all(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|path| black_box(read_and_hash(path)).0 as u64)
        .sum()
}

fn inspection(c: &mut Criterion) {
    let files = shared_objects();
    assert!(
        !files.is_empty(),
        "no shared objects in {SHARED_OBJECT_DIR}"
    );
    // A first pass warms the page cache, so both sides read from memory.
    let (total, plugins) = inspect_all(&files);
    let started = Instant::now();
    assert_eq!(inspect_all(&files), (total, plugins));
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "inspection: {} files, {:.1} MB in {SHARED_OBJECT_DIR} ({plugins} plugins); one pass: {:.0} files/s, {:.0} MB/s",
        files.len(),
        total as f64 / 1e6,
        files.len() as f64 / seconds,
        total as f64 / 1e6 / seconds,
    );
    write_corpus(files.len(), total, plugins);

    let mut group = c.benchmark_group("inspection");
    group.throughput(Throughput::Bytes(total));
    // An iteration takes a good part of a second: equal-sized samples, not criterion's ramp.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("read_and_hash", |b| {
        b.iter(|| assert_eq!(read_and_hash_all(&files), total));
    });
    group.bench_function("inspect", |b| {
        b.iter(|| assert_eq!(inspect_all(&files), (total, plugins)));
    });
    group.bench_function("full_analysis", |b| {
        b.iter(|| assert_eq!(analyze_all(&files), total));
    });
    group.finish();
}

fn write_corpus(files: usize, bytes: u64, plugins: usize) {
    let dir = criterion_dir().join("inspection");
    let corpus = serde_json::json!({
        "dir": SHARED_OBJECT_DIR,
        "files": files,
        "bytes": bytes,
        "plugins": plugins,
    });
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("corpus.json"), corpus.to_string()));
    if let Err(e) = written {
        eprintln!("cannot write {}: {e}", Path::new(&dir).display());
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = inspection
}
criterion_main!(benches);

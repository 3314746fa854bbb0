//! Process benchmarks (SPEC §13), each beside its floor in the same run:
//! - `warm_call`: one call to a warm sandboxed worker vs a raw socketpair round trip;
//! - `cold_start`: start a worker, call once, stop it vs a bare fork + dlopen + call;
//! - `cold_start_big_host`: the same cold start from this process with 2 GiB resident vs
//!   without, to show launch cost does not grow with the host.
//!
//! `cold_start` runs first, and its floor before anything starts a worker: the floor `dlopen`s
//! after `fork`, which is only sound while the process is single-threaded.

use benchmarks::{
    RawEcho, bare_cold_call, call_ok, open_plugin, plugin_path, resident_bytes, start_worker,
    stories, thread_count,
};
use criterion::{Criterion, criterion_group, criterion_main};
use host_loader::Plugin;
use std::hint::black_box;
use std::time::Duration;

/// Resident memory of the "big host".
const BALLAST_BYTES: usize = 2 << 30;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

/// The story every single-call benchmark sends (the first one).
fn story() -> Vec<u8> {
    stories().swap_remove(0)
}

/// A sandboxed cold start: worker confined and plugin loaded, one call, worker killed and reaped.
fn sandboxed_cold_start(plugin: &Plugin, input: &[u8]) -> serde_json::Value {
    let mut worker = start_worker(plugin);
    let output = call_ok(&mut worker, input);
    drop(worker);
    output
}

fn cold_start(c: &mut Criterion) {
    let path = plugin_path();
    let input = story();
    let plugin = open_plugin(&path);
    let threads = thread_count();
    if threads != 1 {
        eprintln!("note: bare_fork_dlopen_call forks from a process with {threads} threads");
    }
    let bare: serde_json::Value =
        serde_json::from_slice(&bare_cold_call(&path, &input)).expect("bare call output is JSON");

    let mut group = c.benchmark_group("cold_start");
    group.sample_size(20);
    group.bench_function("bare_fork_dlopen_call", |b| {
        b.iter(|| bare_cold_call(&path, black_box(&input)));
    });
    assert_eq!(
        sandboxed_cold_start(&plugin, &input),
        bare,
        "sandboxed and bare calls disagree"
    );
    group.bench_function("sandboxed_cold_start", |b| {
        b.iter(|| sandboxed_cold_start(&plugin, black_box(&input)));
    });
    group.finish();
}

fn warm_call(c: &mut Criterion) {
    let input = story();
    let mut echo = RawEcho::spawn();
    let plugin = open_plugin(&plugin_path());
    let mut worker = start_worker(&plugin);

    let mut group = c.benchmark_group("warm_call");
    group.bench_function("raw_socketpair_round_trip", |b| {
        b.iter(|| assert_eq!(echo.round_trip(black_box(&input)), &input[..]));
    });
    group.bench_function("sandboxed_warm_call", |b| {
        b.iter(|| call_ok(&mut worker, black_box(&input)));
    });
    group.finish();
}

fn cold_start_big_host(c: &mut Criterion) {
    let input = story();
    let plugin = open_plugin(&plugin_path());

    let mut group = c.benchmark_group("cold_start_big_host");
    group.sample_size(20);
    group.bench_function("empty_host", |b| {
        b.iter(|| sandboxed_cold_start(&plugin, black_box(&input)));
    });
    // Filled with non-zero bytes so every page is written, hence resident; black_box keeps the
    // allocation from being optimised away.
    let ballast = black_box(vec![1u8; BALLAST_BYTES]);
    let resident = resident_bytes();
    assert!(
        resident >= BALLAST_BYTES as u64,
        "host is not 2 GiB resident ({resident} bytes)"
    );
    group.bench_function("host_2gb_resident", |b| {
        b.iter(|| sandboxed_cold_start(&plugin, black_box(&input)));
    });
    group.finish();
    drop(ballast);
}

criterion_group! {
    name = process;
    config = config();
    targets = cold_start, warm_call, cold_start_big_host
}
criterion_main!(process);

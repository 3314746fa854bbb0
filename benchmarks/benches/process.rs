//! Process benchmarks (SPEC §13), each beside its floor in the same run:
//! - `cold_start`: start a worker, call once, stop it, vs a bare fork + dlopen + call; also the
//!   same cold start with one `exec` per worker instead of the launcher, for reference;
//! - `warm_call`: one call to a warm worker (the probe's `echo`, which does no work) vs a raw
//!   socketpair round trip of the same bytes between two processes; also `word-stats`'
//!   `analyze` warm, for reference;
//! - `cold_start_big_host`: the same cold start with 2 GiB resident in this process vs without,
//!   to show launch cost does not grow with the host;
//! - `layer_cost`: the cold start of a Minimal plugin with every confinement layer, and with
//!   one layer left out at a time, so the cost of each layer shows in the same table;
//! - `idle_worker`: the proportional set size of an idle warm worker, written to
//!   `<criterion>/idle_worker/pss.json` for the report (a size, not a time).
//!
//! `cold_start` runs first, and its floor before anything starts a worker: the floor `dlopen`s
//! after `fork`, which is only sound while the process is single-threaded.

use benchmarks::{
    RawEcho, bare_cold_call, call_ok, criterion_dir, open_plugin, plugin_path, probe_path, pss_kb,
    resident_bytes, start_worker, stories, thread_count, worker_options,
};
use criterion::{Criterion, criterion_group, criterion_main};
use host_loader::{LaunchMode, Outcome, Plugin, Worker};
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

/// A sandboxed cold start: worker confined and plugin loaded, one call, worker retired.
fn sandboxed_cold_start(plugin: &Plugin, input: &[u8]) -> serde_json::Value {
    let mut worker = Worker::start(plugin, worker_options(plugin)).expect("worker starts");
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

/// What each confinement layer costs at cold start: `lifecycle-probe` (a Minimal plugin, so
/// that any layer may be left out) with every layer, and with one left out at a time; and
/// what the launcher saves: the same worker exec'd afresh (`LaunchMode::Exec`, which has every
/// layer but the PID namespace, only the launcher makes one) instead of forked from it.
fn layer_cost(c: &mut Criterion) {
    let probe = open_plugin(&probe_path());
    let input = b"layer cost".to_vec();
    let start_with = |leave_out: &[&str], launch: LaunchMode| {
        let mut options = worker_options(&probe);
        options.launch = launch;
        options.leave_out = leave_out.iter().map(|l| l.to_string()).collect();
        let mut worker = Worker::start(&probe, options).expect("worker starts");
        let result = worker.call("echo", black_box(&input));
        assert_eq!(result.status, Outcome::Ok, "{result:?}");
        for layer in leave_out {
            assert!(
                !worker.layers().iter().any(|l| l == layer),
                "{layer} was left out"
            );
        }
        drop(worker);
    };
    let start = |leave_out: &[&str]| start_with(leave_out, LaunchMode::Launcher);
    let mut group = c.benchmark_group("layer_cost");
    group.sample_size(20);
    group.bench_function("all_layers", |b| b.iter(|| start(&[])));
    group.bench_function("exec_per_worker", |b| {
        b.iter(|| start_with(&[], LaunchMode::Exec))
    });
    const OPTIONAL: [&str; 4] = ["seccomp", "landlock", "namespaces", "uid-drop"];
    for layer in OPTIONAL {
        group.bench_function(format!("without_{layer}"), |b| b.iter(|| start(&[layer])));
    }
    // What is left when none of them is set up: the launch, PID namespace, private directory,
    // rlimits, cgroup, go-ahead, load and first call.
    group.bench_function("without_all_four", |b| b.iter(|| start(&OPTIONAL)));
    group.finish();
}

fn warm_call(c: &mut Criterion) {
    let input = story();
    let mut echo = RawEcho::spawn();
    let probe = open_plugin(&probe_path());
    let mut probe_worker = start_worker(&probe);
    let word_stats = open_plugin(&plugin_path());
    let mut word_stats_worker = start_worker(&word_stats);
    let expected = serde_json::Value::String(String::from_utf8(input.clone()).expect("UTF-8"));

    let mut group = c.benchmark_group("warm_call");
    group.bench_function("raw_socketpair_round_trip", |b| {
        b.iter(|| assert_eq!(echo.round_trip(black_box(&input)), &input[..]));
    });
    group.bench_function("sandboxed_warm_call", |b| {
        b.iter(|| {
            let result = probe_worker.call("echo", black_box(&input));
            assert_eq!(result.status, Outcome::Ok, "{result:?}");
            result.output
        });
    });
    assert_eq!(
        probe_worker.call("echo", &input).output.as_ref(),
        Some(&expected)
    );
    group.bench_function("sandboxed_warm_call_word_stats", |b| {
        b.iter(|| call_ok(&mut word_stats_worker, black_box(&input)));
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

/// PSS of an idle warm `word-stats` worker after one call (a measurement, not a timing).
fn idle_worker(_: &mut Criterion) {
    let plugin = open_plugin(&plugin_path());
    let mut worker = start_worker(&plugin);
    call_ok(&mut worker, &story());
    let pss = pss_kb(worker.pid()).expect("smaps_rollup of the worker");
    let rss = std::fs::read_to_string(format!("/proc/{}/status", worker.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    println!("idle_worker: PSS {pss} KiB, RSS {rss} KiB");
    let dir = criterion_dir().join("idle_worker");
    let _ = std::fs::create_dir_all(&dir);
    let json = serde_json::json!({ "pss_kb": pss, "rss_kb": rss });
    let _ = std::fs::write(dir.join("pss.json"), json.to_string());
}

criterion_group! {
    name = process;
    config = config();
    targets = cold_start, warm_call, layer_cost, cold_start_big_host, idle_worker
}
criterion_main!(process);

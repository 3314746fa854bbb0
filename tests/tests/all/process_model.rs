//! The process model (issue 3): the launcher, the warm pool, the plugin lifecycle, pipelined
//! streams and large payloads through shared memory.

use host_loader::pool::PoolStats;
use host_loader::worker::{SpawnError, launcher};
use host_loader::{CallResult, Outcome, Plugin, Pool, PoolConfig, Worker, WorkerOptions};
use integration_tests::{binary, plugin, stories, worker_options};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn story(title: &str, text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "title": title, "text": text })).unwrap()
}

fn probe() -> Arc<Plugin> {
    Arc::new(Plugin::open(plugin("lifecycle-probe")).unwrap())
}

fn probe_options(plugin: &Plugin, config: Value) -> WorkerOptions {
    let mut options = worker_options(plugin);
    options.config = config;
    options
}

/// A field of `/proc/<pid>/status`, e.g. `PPid`.
fn proc_status(pid: i32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

fn output(result: &CallResult) -> &Value {
    assert_eq!(result.status, Outcome::Ok, "{result:?}");
    result.output.as_ref().unwrap()
}

/// Polls `condition` until it holds or `limit` passes (for state changed by a background
/// thread, where there is nothing to block on).
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    condition()
}

#[test]
fn workers_are_forked_from_a_single_threaded_launcher_and_are_children_of_the_host() {
    let plugin = Plugin::open(plugin("word-stats")).unwrap();
    let mut worker = Worker::start(&plugin, worker_options(&plugin)).unwrap();
    let launcher = launcher::for_exe(&binary("plugin-worker"));
    let launcher_pid = launcher.pid().expect("the launcher runs");
    assert_eq!(proc_status(launcher_pid, "Threads").as_deref(), Some("1"));
    let host = std::process::id().to_string();
    assert_eq!(proc_status(launcher_pid, "PPid"), Some(host.clone()));
    // CLONE_PARENT: the worker's parent is the host, not the launcher.
    assert_eq!(proc_status(worker.pid(), "PPid"), Some(host));
    let result = worker.call("analyze", &serde_json::to_vec(&stories()[0]).unwrap());
    assert_eq!(output(&result)["words"], 129);
}

#[test]
fn a_killed_launcher_is_replaced_on_the_next_launch() {
    let plugin = Plugin::open(plugin("word-stats")).unwrap();
    let launcher = launcher::for_exe(&binary("plugin-worker"));
    launcher.start().unwrap();
    let old = launcher.pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let mut worker = Worker::start(&plugin, worker_options(&plugin)).unwrap();
    let new = launcher.pid().unwrap();
    assert_ne!(old, new);
    let result = worker.call("analyze", &story("t", "one two"));
    assert_eq!(output(&result)["words"], 2);
}

#[test]
fn a_busy_multithreaded_host_launches_200_workers_without_deadlock() {
    let plugin = Plugin::open(plugin("word-stats")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Eight threads that allocate and print without pause: they hold the allocator's and
    // stdout's locks at random moments, which is what deadlocks a forked copy of the host.
    let noise: Vec<_> = (0..8)
        .map(|i| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut kept: Vec<Vec<u8>> = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    kept.push(vec![i as u8; 4096 + (n as usize % 8192)]);
                    if kept.len() > 256 {
                        kept.clear();
                    }
                    println!("noise thread {i} iteration {n}");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let input = story("t", "a b c");
    for launch in 0..200 {
        let mut worker = Worker::start(&plugin, worker_options(&plugin))
            .unwrap_or_else(|e| panic!("launch {launch}: {e}"));
        let result = worker.call("analyze", &input);
        assert_eq!(output(&result)["words"], 3, "launch {launch}");
    }
    stop.store(true, Ordering::Relaxed);
    for thread in noise {
        assert!(thread.join().unwrap() > 0);
    }
}

#[test]
fn concurrent_calls_from_many_threads_get_their_own_results() {
    let plugin = Plugin::open(plugin("word-stats")).unwrap();
    let options = worker_options(&plugin);
    let pool = Pool::new(
        Arc::new(plugin),
        options,
        PoolConfig {
            max_workers: 3,
            ..PoolConfig::default()
        },
    );
    let stories = stories();
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let pool = &pool;
            let stories = &stories;
            scope.spawn(move || {
                for i in 0..40 {
                    let story = &stories[(thread * 17 + i) % stories.len()];
                    let result = pool.call("analyze", &serde_json::to_vec(story).unwrap());
                    assert_eq!(output(&result)["title"], story["title"], "thread {thread}");
                }
            });
        }
    });
    let stats = pool.stats();
    assert!(stats.started <= 3, "the size limit holds: {stats:?}");
    assert_eq!(stats.retired, 0, "{stats:?}");
}

#[test]
fn the_pool_reuses_warm_workers_and_replaces_one_after_any_failed_call() {
    let plugin = probe();
    let options = probe_options(&plugin, json!({ "label": "pool" }));
    let pool = Pool::new(plugin, options, PoolConfig::default());
    let first = pool.call("analyze", &story("a", ""));
    let second = pool.call("analyze", &story("b", ""));
    assert_eq!(second.worker_pid, first.worker_pid, "warm reuse");
    assert!(first.worker_pid.is_some());
    assert_eq!(output(&second)["calls"], 2);
    assert_eq!(
        output(&second)["label"],
        "pool",
        "init got the configuration"
    );

    let poisoned = pool.call("analyze", &story("poison", ""));
    assert_eq!(poisoned.status, Outcome::PluginError);
    let after = pool.call("analyze", &story("c", ""));
    assert_ne!(after.worker_pid, first.worker_pid, "a fresh worker");
    let after = output(&after);
    assert_eq!(after["poisoned"], false, "no state from the failed call");
    assert_eq!(after["calls"], 1);
    assert_eq!(
        pool.stats(),
        PoolStats {
            live: 1,
            idle: 1,
            started: 2,
            retired: 1
        }
    );
}

#[test]
fn idle_workers_are_evicted() {
    let plugin = probe();
    let options = probe_options(&plugin, json!({}));
    let pool = Pool::new(
        plugin,
        options,
        PoolConfig {
            idle_timeout: Duration::from_millis(100),
            ..PoolConfig::default()
        },
    );
    let result = pool.call("analyze", &story("a", ""));
    let pid = result.worker_pid.expect("a worker ran the call");
    assert_eq!(pool.stats().idle, 1);
    assert!(
        eventually(Duration::from_secs(5), || pool.stats().live == 0),
        "{:?}",
        pool.stats()
    );
    assert_eq!(pool.stats().retired, 1);
    // Retired workers are reaped by a background thread.
    assert!(
        eventually(Duration::from_secs(5), || proc_status(pid, "State")
            .is_none()),
        "worker {pid} is gone"
    );
}

#[test]
fn init_failure_is_reported_with_its_reason() {
    let plugin = probe();
    let options = probe_options(&plugin, json!({ "fail": "no database" }));
    match Worker::start(&plugin, options.clone()) {
        Err(SpawnError::Init(result)) => {
            assert_eq!(result.status, Outcome::PluginError);
            let error = result.error.unwrap();
            assert!(
                error.contains("init failed") && error.contains("no database"),
                "{error}"
            );
        }
        other => panic!("expected an init failure, got {other:?}"),
    }
    // A configuration the plugin cannot decode is an init failure too.
    let options = probe_options(&plugin, json!({ "unknown_key": 1 }));
    assert!(matches!(
        Worker::start(&plugin, options),
        Err(SpawnError::Init(_))
    ));
    // Through a pool, every input gets that failure as its result.
    let pool = Pool::new(
        Arc::clone(&plugin),
        probe_options(&plugin, json!({ "fail": "x" })),
        PoolConfig::default(),
    );
    let mut results = Vec::new();
    pool.call_many(
        "analyze",
        &[&story("a", "")[..], &story("b", "")],
        |i, r| results.push((i, r.status)),
    );
    assert_eq!(
        results,
        [(0, Outcome::PluginError), (1, Outcome::PluginError)]
    );
}

#[test]
fn shutdown_runs_on_retirement_under_its_deadline() {
    let plugin = probe();
    let worker = Worker::start(&plugin, probe_options(&plugin, json!({}))).unwrap();
    let result = worker.retire().expect("shutdown ran");
    assert_eq!(result.status, Outcome::Ok, "{result:?}");

    let worker = Worker::start(
        &plugin,
        probe_options(&plugin, json!({ "fail_shutdown": true })),
    )
    .unwrap();
    let result = worker.retire().unwrap();
    assert_eq!(result.status, Outcome::PluginError);

    let mut options = probe_options(&plugin, json!({ "shutdown_sleep_ms": 5000 }));
    options.shutdown_ms = 100;
    let worker = Worker::start(&plugin, options).unwrap();
    let pid = worker.pid();
    let started = Instant::now();
    let result = worker.retire().unwrap();
    assert_eq!(result.status, Outcome::Timeout, "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(proc_status(pid, "State").is_none());

    // Lifecycle entry points are not callable by name.
    let mut worker = Worker::start(&plugin, probe_options(&plugin, json!({}))).unwrap();
    assert_eq!(worker.call("init", b"{}").status, Outcome::Denied);
    assert_eq!(worker.call("shutdown", b"").status, Outcome::Denied);
}

#[test]
fn a_stream_answers_in_order_and_a_crash_fails_only_its_own_call() {
    let plugin = probe();
    let options = probe_options(&plugin, json!({}));
    let pool = Pool::new(plugin, options, PoolConfig::default());
    let titles = ["a", "b", "abort", "c", "d", "poison", "e", "f"];
    let inputs: Vec<Vec<u8>> = titles.iter().map(|t| story(t, t)).collect();
    let inputs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
    let mut results: Vec<(usize, CallResult)> = Vec::new();
    pool.call_many("analyze", &inputs, |i, r| results.push((i, r)));
    let order: Vec<usize> = results.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, (0..titles.len()).collect::<Vec<_>>());
    let statuses: Vec<Outcome> = results.iter().map(|(_, r)| r.status).collect();
    use Outcome::{Crashed, Ok, PluginError};
    assert_eq!(statuses, [Ok, Ok, Crashed, Ok, Ok, PluginError, Ok, Ok]);
    // Calls after the crash ran on a fresh worker, from its first call.
    let calls: Vec<i64> = results
        .iter()
        .filter_map(|(_, r)| r.output.as_ref()?["calls"].as_i64())
        .collect();
    assert_eq!(calls, [1, 2, 1, 2, 1, 2]);
}

#[test]
fn a_long_stream_matches_one_call_at_a_time() {
    let plugin = Plugin::open(plugin("word-stats")).unwrap();
    let options = worker_options(&plugin);
    let stories: Vec<Vec<u8>> = stories()
        .iter()
        .map(|s| serde_json::to_vec(s).unwrap())
        .collect();
    let mut one_by_one = Worker::start(&plugin, options.clone()).unwrap();
    let expected: Vec<Value> = stories
        .iter()
        .map(|s| output(&one_by_one.call("analyze", s)).clone())
        .collect();
    let mut streamed = Worker::start(&plugin, options).unwrap();
    let inputs: Vec<&[u8]> = stories.iter().map(Vec::as_slice).collect();
    let mut got = Vec::new();
    let done = streamed.call_many("analyze", &inputs, 32, |i, r| {
        got.push((i, output(&r).clone()))
    });
    assert_eq!(done, stories.len());
    assert!(got.iter().enumerate().all(|(n, (i, _))| n == *i));
    assert_eq!(
        got.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        expected
    );
}

#[test]
fn large_inputs_and_outputs_go_through_shared_memory_intact() {
    let plugin = probe();
    let mut worker = Worker::start(&plugin, probe_options(&plugin, json!({}))).unwrap();
    // 3 MB of text in, 2 MB of output back: both above the shared-memory threshold.
    let text: String = (0..3_000_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let sum: u64 = text.bytes().map(u64::from).sum();
    let result = worker.call("analyze", &story("big:2000000", &text));
    let out = output(&result);
    assert_eq!(out["text_len"], 3_000_000);
    assert_eq!(out["text_sum"], sum);
    assert_eq!(out["echo"].as_str().unwrap().len(), 2_000_000);
    // Still the same worker, and small calls still work after it.
    let result = worker.call("analyze", &story("small", "xy"));
    assert_eq!(output(&result)["calls"], 2);

    // The same bound as frames: an input above the limit is refused without running.
    let mut options = probe_options(&plugin, json!({}));
    options.max_frame = 1_000_000;
    let mut worker = Worker::start(&plugin, options).unwrap();
    let result = worker.call("analyze", &story("x", &text));
    assert_eq!(result.status, Outcome::Denied, "{result:?}");
    assert!(worker.is_alive());
    // An output above the host's limit is a protocol error: the worker is killed.
    let result = worker.call("analyze", &story("big:2000000", ""));
    assert_eq!(result.status, Outcome::ProtocolError, "{result:?}");
    assert!(!worker.is_alive());
}

#[test]
fn cpu_limit_is_enforced_per_call_by_the_watchdog() {
    let plugin = Plugin::open(plugin("hostile-spin")).unwrap();
    let mut options = worker_options(&plugin);
    options.limits.cpu_ms = 200;
    options.limits.wall_ms = 5000;
    let mut worker = Worker::start(&plugin, options).unwrap();
    let result = worker.call("analyze", &story("t", "x"));
    assert_eq!(result.status, Outcome::CpuLimit, "{result:?}");
    assert!(result.usage.cpu_ms >= 200, "{result:?}");
    assert!(result.usage.wall_ms < 5000, "{result:?}");
}

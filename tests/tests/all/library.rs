//! The host-loader library API: workers, outcomes, isolation between calls, resource hygiene.

use host_loader::{Outcome, Plugin, Worker};
use integration_tests::{plugin, stories, worker_options};
use std::sync::Arc;

fn first_story() -> Vec<u8> {
    serde_json::to_vec(&stories()[0]).unwrap()
}

fn start(name: &str) -> (Plugin, Worker) {
    let plugin = Plugin::open(plugin(name)).unwrap();
    let worker = Worker::start(&plugin, worker_options(&plugin)).unwrap();
    (plugin, worker)
}

fn word_stats_still_works() {
    let (_, mut worker) = start("word-stats");
    let result = worker.call("analyze", &first_story());
    assert_eq!(result.status, Outcome::Ok, "{result:?}");
    assert_eq!(result.output.unwrap()["words"], 129);
}

#[test]
fn each_hostile_plugin_is_contained_and_the_host_keeps_serving() {
    for (name, expected) in [
        ("hostile-spin", Outcome::Timeout),
        ("hostile-alloc", Outcome::MemoryLimit),
        ("hostile-panic", Outcome::Panic),
        ("hostile-segv", Outcome::Crashed),
    ] {
        let (_, mut worker) = start(name);
        let result = worker.call("analyze", &first_story());
        assert_eq!(result.status, expected, "{name}: {result:?}");
        assert!(
            !worker.is_alive(),
            "{name}: a failed call retires its worker"
        );
        word_stats_still_works();
    }
}

#[test]
fn memory_limit_is_recognised_without_a_cgroup_too() {
    let plugin = Plugin::open(plugin("hostile-alloc")).unwrap();
    let mut options = worker_options(&plugin);
    options.use_cgroup = false;
    let mut worker = Worker::start(&plugin, options).unwrap();
    assert!(!worker.layers().iter().any(|l| l == "cgroup-memory"));
    let result = worker.call("analyze", &first_story());
    assert_eq!(result.status, Outcome::MemoryLimit, "{result:?}");
    assert!(result.error.unwrap().contains("RLIMIT_AS"));
}

#[test]
fn a_worker_reports_its_layers_and_serves_many_calls_warm() {
    let (_, mut worker) = start("word-stats");
    for layer in [
        "session",
        "parent-death-signal",
        "fd-closing",
        "signal-reset",
        "rlimits",
        "watchdog",
    ] {
        assert!(
            worker.layers().iter().any(|l| l == layer),
            "missing layer {layer}: {:?}",
            worker.layers()
        );
    }
    let pid = worker.pid();
    for story in stories().iter().take(20) {
        let result = worker.call("analyze", &serde_json::to_vec(story).unwrap());
        assert_eq!(result.status, Outcome::Ok);
        assert_eq!(result.output.unwrap()["title"], story["title"]);
    }
    assert_eq!(worker.pid(), pid, "the same warm worker served every call");
}

#[test]
fn concurrent_calls_from_many_threads_get_their_own_results() {
    let plugin = Arc::new(Plugin::open(plugin("word-stats")).unwrap());
    let stories = Arc::new(stories());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let plugin = Arc::clone(&plugin);
            let stories = Arc::clone(&stories);
            std::thread::spawn(move || {
                let mut worker = Worker::start(&plugin, worker_options(&plugin)).unwrap();
                for story in stories.iter().skip(t).step_by(8) {
                    let result = worker.call("analyze", &serde_json::to_vec(story).unwrap());
                    assert_eq!(result.status, Outcome::Ok);
                    assert_eq!(
                        result.output.unwrap()["title"],
                        story["title"],
                        "results mixed up"
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn opening_a_plugin_runs_none_of_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let so = plugin("hostile-ctor");
    // The constructor writes to the current directory. Plugin::open only reads bytes: no
    // marker anywhere. A worker runs it, confined: in its private temporary directory (its
    // working directory), never in the data directory or the host's.
    let opened = Plugin::open(&so).unwrap();
    assert!(!dir.path().join("hostile-ctor.marker").exists());
    let mut options = worker_options(&opened);
    options.data_dir = Some(dir.path().to_path_buf());
    let mut worker = Worker::start(&opened, options).unwrap();
    let report = worker.call("analyze", &first_story()).output.unwrap();
    assert_eq!(report["constructor_ran"], true, "{report}");
    assert!(!dir.path().join("hostile-ctor.marker").exists());
    assert!(!std::path::Path::new("hostile-ctor.marker").exists());
}

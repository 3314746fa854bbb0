//! Resource hygiene of the library: hundreds of crashing workers leak no zombie and no
//! descriptor. It counts the whole process's descriptors and children, so it is a binary of its
//! own: in `all`, the other tests' pipes, sockets and workers come and go meanwhile and make
//! the count flaky (it was, on CI).

use host_loader::{Outcome, Plugin, Worker};
use integration_tests::{plugin, stories, worker_options};

fn first_story() -> Vec<u8> {
    serde_json::to_vec(&stories()[0]).unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn zombie_children() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // Fields after the parenthesised command: state, ppid, ...
            let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
            let mut fields = after.split(' ');
            let state = fields.next();
            let ppid = fields.next();
            state == Some("Z") && ppid == Some(me.as_str())
        })
        .collect()
}

#[test]
fn hundreds_of_crashing_calls_leak_no_zombie_and_no_descriptor() {
    let plugin = Plugin::open(plugin("hostile-segv")).unwrap();
    let input = first_story();
    // Warm up: the spawner thread and its channel exist after the first spawn.
    let mut worker = Worker::start(&plugin, worker_options(&plugin)).unwrap();
    assert_eq!(worker.call("analyze", &input).status, Outcome::Crashed);
    drop(worker);
    let fds_before = open_fds();
    for _ in 0..200 {
        let mut worker = Worker::start(&plugin, worker_options(&plugin)).unwrap();
        assert_eq!(worker.call("analyze", &input).status, Outcome::Crashed);
    }
    // Output-capture threads close their pipe end when they see EOF; give them a moment by
    // waiting for the count to settle rather than sleeping a fixed time.
    let mut fds_after = open_fds();
    for _ in 0..100 {
        if fds_after <= fds_before {
            break;
        }
        std::thread::yield_now();
        fds_after = open_fds();
    }
    assert!(
        fds_after <= fds_before,
        "descriptors leaked: {fds_before} before, {fds_after} after"
    );
    // Workers dropped without waiting are reaped by a background thread moments later; a leak
    // would stay.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut zombies = zombie_children();
    while !zombies.is_empty() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
        zombies = zombie_children();
    }
    assert_eq!(zombies, Vec::<String>::new());
}

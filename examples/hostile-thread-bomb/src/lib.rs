//! Hostile: spawns threads that stay alive, as many as it is allowed (up to 4096), then lets
//! them all go and reports how many it got. Without a task limit, a plugin's threads are
//! bounded only by its address space; with the pids cgroup (`cgroup-pids`) the kernel refuses
//! the thread past the worker's `max_tasks` with `EAGAIN`.
use hostile_common::Attempt;
use plugin_sdk::{Story, hook, plugin};
use std::sync::Arc;

plugin! {
    name: "hostile-thread-bomb",
    description: "Spawns threads that never end, as many as it can",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 2000 },
}

/// Most threads it tries for.
const MAX_THREADS: usize = 4096;

/// What it got: the threads alive at once, and why the next one failed (if one did).
#[derive(Debug, serde::Serialize)]
pub struct Bomb {
    /// Threads spawned and alive together.
    pub spawned: usize,
    /// The error of the first refused spawn.
    pub refused: Option<String>,
    /// The attempt, as every hostile example reports it (`escaped`, `detail`).
    #[serde(flatten)]
    pub attempt: Attempt,
}

/// Spawns small-stack threads that all wait until it stops spawning, then releases them.
#[hook]
pub fn analyze(story: Story) -> Bomb {
    let _ = story;
    let mut handles = Vec::new();
    let mut refused = None;
    // Every thread waits on the release channel, so they are all alive at once.
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    for _ in 0..MAX_THREADS {
        let gate = Arc::clone(&gate);
        match std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = gate.lock().map(|g| g.recv());
            }) {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    let spawned = handles.len();
    // One message per thread: each takes the lock, receives one, and ends.
    for _ in 0..spawned {
        let _ = release.send(());
    }
    for handle in handles {
        let _ = handle.join();
    }
    let attempt = if refused.is_none() {
        Attempt::escaped(format!("{spawned} threads alive at once, none refused"))
    } else {
        Attempt::stopped(format!("refused after {spawned} threads"))
    };
    Bomb {
        spawned,
        refused,
        attempt,
    }
}

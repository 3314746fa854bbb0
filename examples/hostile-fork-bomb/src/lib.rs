//! Hostile: `analyze` calls `fork()` in a loop, and every child keeps forking forever. The
//! process-count limit (`RLIMIT_NPROC`, a pid cgroup or the seccomp filter) must stop it, and the
//! host must kill every process the worker left behind.
use hostile_common::{Attempt, errno_text};
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-fork-bomb",
    description: "Tries to fork without end in analyze",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

/// Forks until 1000 forks have failed or 100 000 have succeeded; the children fork forever.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let _ = story;
    let mut successes: u64 = 0;
    let mut failures: u64 = 0;
    let mut last_error = String::from("none");
    while failures < 1000 && successes < 100_000 {
        // SAFETY: fork has no memory-safety preconditions; the child only calls fork again
        // (async-signal-safe) and never returns into Rust code that could touch locks.
        let pid = unsafe { libc::fork() };
        match pid {
            0 => loop {
                // SAFETY: as above; the child keeps forking and ignores the result.
                unsafe { libc::fork() };
            },
            pid if pid < 0 => {
                failures += 1;
                last_error = errno_text();
            }
            _ => successes += 1,
        }
    }
    Attempt {
        escaped: successes >= 100_000,
        detail: format!("{successes} forks succeeded, {failures} failed: {last_error}"),
    }
}

//! Hostile: sends SIGTERM to the pid in the story's text, or else to its parent (the host). The
//! pid namespace (no parent visible) or the seccomp filter must stop it.
use hostile_common::{Attempt, errno_text, target_pid};
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-kill-parent",
    description: "Tries to send SIGTERM to its parent process",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

/// Sends SIGTERM to the target; escaped if the kernel accepted it.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let target = target_pid(&story.text);
    if target <= 1 {
        return Attempt::stopped(format!("no parent visible (pid {target})"));
    }
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(target, libc::SIGTERM) };
    if rc == 0 {
        Attempt::escaped(format!("sent SIGTERM to pid {target}"))
    } else {
        Attempt::stopped(format!(
            "kill(pid {target}, SIGTERM) failed: {}",
            errno_text()
        ))
    }
}

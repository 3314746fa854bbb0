//! Hostile: attaches with `ptrace(PTRACE_ATTACH)` to the pid in the story's text, or else to its
//! parent (the host). The seccomp filter must refuse `ptrace` (and the uid drop / Yama make it
//! fail anyway).
use hostile_common::{Attempt, errno_text, target_pid};
use plugin_sdk::{Story, hook, plugin};
use std::ffi::c_void;

plugin! {
    name: "hostile-ptrace",
    description: "Tries to attach to another process with ptrace",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

/// Attaches to the target; on success waits for it to stop and detaches again.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let target = target_pid(&story.text);
    let null = std::ptr::null_mut::<c_void>();
    // SAFETY: PTRACE_ATTACH takes no addresses; the null pointers are ignored by the kernel.
    let rc = unsafe { libc::ptrace(libc::PTRACE_ATTACH, target, null, null) };
    if rc != 0 {
        return Attempt::stopped(format!(
            "PTRACE_ATTACH to pid {target} failed: {}",
            errno_text()
        ));
    }
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer for the call's duration.
    let waited = unsafe { libc::waitpid(target, &mut status, libc::__WALL) };
    let waited = if waited == target {
        "it stopped".to_string()
    } else {
        format!("waitpid failed: {}", errno_text())
    };
    // SAFETY: PTRACE_DETACH takes no address, and a null data pointer means no signal.
    let detached = unsafe { libc::ptrace(libc::PTRACE_DETACH, target, null, null) };
    let detached = if detached == 0 {
        "detached".to_string()
    } else {
        format!("PTRACE_DETACH failed: {}", errno_text())
    };
    Attempt::escaped(format!("attached to pid {target}; {waited}; {detached}"))
}

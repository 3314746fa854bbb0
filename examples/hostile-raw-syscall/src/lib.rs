//! Hostile: makes its system calls through `syscall(2)` (here `getpid` and a `socket`), a
//! single import that reaches every system call, so import analysis cannot see what it does.
//! Static inspection must attribute a `syscall` call site to this crate's code
//! (`IMPORT_RAW_SYSCALL`, an error) and `validate` must deny it; if it ever runs, seccomp
//! answers the socket call.
use hostile_common::{Attempt, rc_text};
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-raw-syscall",
    description: "Makes system calls through raw syscall() to hide them from import analysis",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

/// Calls `getpid` and `socket` through `syscall`.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let _ = story;
    // SAFETY: getpid takes no arguments and cannot fail.
    let pid = unsafe { libc::syscall(libc::SYS_getpid) };
    // SAFETY: socket takes three integers; no memory is passed.
    let socket = unsafe {
        libc::syscall(
            libc::SYS_socket,
            libc::AF_INET,
            libc::SOCK_STREAM,
            0 as libc::c_int,
        )
    };
    let detail = format!("getpid() = {pid}; socket: {}", rc_text(socket));
    if socket >= 0 {
        // SAFETY: `socket` is a descriptor this call just opened, closed once.
        unsafe { libc::close(socket as libc::c_int) };
        Attempt::escaped(detail)
    } else {
        Attempt::stopped(detail)
    }
}

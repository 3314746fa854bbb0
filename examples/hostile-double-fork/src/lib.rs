//! Hostile: forks; the child calls `setsid()` and forks again, then exits, so the grandchild
//! (named `hostile-orphan`) is reparented away from the worker and keeps running after the call.
//! The host must kill it anyway (a pid namespace or cgroup holding every process of the worker).
//! With the text `wait`, the worker itself then sleeps, so the call ends in `timeout`.
use hostile_common::{Attempt, errno_text};
use plugin_sdk::{Story, hook, plugin};
use std::time::Duration;

plugin! {
    name: "hostile-double-fork",
    description: "Tries to leave a detached grandchild process running after its call",
    author: "plugin-host examples",
    level: minimal,
    permissions: ["process.spawn:/usr/bin/sleep"],
    limits: { wall_ms: 1000 },
}

/// Writes all of `bytes` to `fd`, async-signal-safely; false if that failed.
fn write_all(fd: libc::c_int, bytes: &[u8]) -> bool {
    let mut done = 0;
    while done < bytes.len() {
        let rest = &bytes[done..];
        // SAFETY: `rest` is valid for reads of `rest.len()` bytes.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return false;
        }
        done += n as usize;
    }
    true
}

/// Reads exactly 4 bytes from `fd`, or `None` at end of file or on an error.
fn read_word(fd: libc::c_int) -> Option<[u8; 4]> {
    let mut word = [0u8; 4];
    let mut done = 0;
    while done < word.len() {
        let rest = &mut word[done..];
        // SAFETY: `rest` is valid for writes of `rest.len()` bytes.
        let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        match n {
            n if n > 0 => done += n as usize,
            n if n < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return None,
        }
    }
    Some(word)
}

/// The grandchild: names itself, sends its pid up the pipe, and waits forever.
fn grandchild(write_end: libc::c_int) -> ! {
    // SAFETY: PR_SET_NAME reads a NUL-terminated name of at most 16 bytes, which this is.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"hostile-orphan".as_ptr()) };
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    write_all(write_end, &pid.to_le_bytes());
    // SAFETY: closing a descriptor this process owns.
    unsafe { libc::close(write_end) };
    loop {
        // SAFETY: pause has no preconditions.
        unsafe { libc::pause() };
    }
}

/// The intermediate child: a new session, one more fork, and out. Only async-signal-safe calls
/// (the worker may have other threads). A failed fork is reported up the pipe as `-errno`.
fn intermediate(write_end: libc::c_int) -> ! {
    // SAFETY: setsid has no preconditions.
    unsafe { libc::setsid() };
    // SAFETY: the grandchild only makes async-signal-safe calls and never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        grandchild(write_end);
    }
    if pid < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        write_all(write_end, &(-errno).to_le_bytes());
    }
    // SAFETY: _exit ends this process without running the parent's atexit handlers.
    unsafe { libc::_exit(0) }
}

/// Double-forks a `setsid` grandchild and reports whether it is still alive.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 stores.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Attempt::stopped(format!("pipe failed: {}", errno_text()));
    }
    let [read_end, write_end] = fds;
    // SAFETY: the child only makes async-signal-safe calls and ends in _exit.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: closing a descriptor this process owns.
        unsafe { libc::close(read_end) };
        intermediate(write_end);
    }
    let fork_error = (child < 0).then(errno_text);
    // SAFETY: closing a descriptor this process owns (so the read below sees end of file once
    // every child has gone).
    unsafe { libc::close(write_end) };
    if let Some(error) = fork_error {
        // SAFETY: closing a descriptor this process owns.
        unsafe { libc::close(read_end) };
        return Attempt::stopped(format!("fork failed: {error}"));
    }
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer for the call's duration.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let word = read_word(read_end);
    // SAFETY: closing a descriptor this process owns.
    unsafe { libc::close(read_end) };
    let pid = match word.map(i32::from_le_bytes) {
        None => return Attempt::stopped("the grandchild never reported its pid"),
        Some(errno) if errno <= 0 => {
            let error = std::io::Error::from_raw_os_error(-errno);
            return Attempt::stopped(format!("the second fork failed: {error}"));
        }
        Some(pid) => pid,
    };
    if story.text.trim() == "wait" {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    if alive {
        Attempt::escaped(format!("left a setsid grandchild behind, pid {pid}"))
    } else {
        Attempt::stopped(format!(
            "the setsid grandchild, pid {pid}, is gone: {}",
            errno_text()
        ))
    }
}

//! Worker-side process hygiene, run first thing in the worker, single-threaded, before the
//! plugin is loaded (SPEC §7 steps 1-3).

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
use nix::unistd::{Pid, getppid, setsid};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Descriptor number the IPC channel is moved to.
pub const IPC_FD: RawFd = 3;

/// Leaves the parent's session and process group (so the watchdog can kill the worker's group
/// without touching the host's), and arms a death-of-parent signal.
///
/// `PR_SET_PDEATHSIG` has a race: the parent may die before it is armed. Checking `getppid()`
/// against the pid the parent passed us *after* arming closes it. The signal fires when the
/// parent *thread* that spawned us exits, which is why the host spawns every worker from one
/// dedicated, never-exiting thread (`worker::spawn`).
pub fn enter_session_and_watch_parent(expected_parent: i32) -> io::Result<()> {
    setsid()?;
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if getppid() != Pid::from_raw(expected_parent) {
        return Err(io::Error::other(
            "the host exited before the worker started",
        ));
    }
    Ok(())
}

/// Takes the IPC channel from descriptor 0 (where the spawner put it), moves it to
/// [`IPC_FD`], points descriptor 0 at `/dev/null`, and closes every other inherited
/// descriptor above 2 (stdout and stderr are the capture pipe).
pub fn take_ipc_channel() -> io::Result<UnixStream> {
    // Close everything at 3 and above first: a forked-and-exec'd child inherits whatever the
    // host had open without CLOEXEC.
    // SAFETY: close_range only closes descriptors; we own none of them above 2 yet.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc != 0 {
        close_above_2_by_listing()?;
    }
    // SAFETY: dup2 onto IPC_FD, which is free after the loop above; descriptor 0 is ours.
    if unsafe { libc::dup2(0, IPC_FD) } != IPC_FD {
        return Err(io::Error::last_os_error());
    }
    let null = std::fs::OpenOptions::new().read(true).open("/dev/null")?;
    // SAFETY: replaces descriptor 0 (our copy of the channel) with /dev/null.
    if unsafe { libc::dup2(null.as_raw_fd(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    drop(null);
    // SAFETY: IPC_FD was just created by dup2 above and nothing else owns it.
    let channel = unsafe { OwnedFd::from_raw_fd(IPC_FD) };
    nix::fcntl::fcntl(
        &channel,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    Ok(UnixStream::from(channel))
}

/// Fallback for kernels without `close_range`: close what `/proc/self/fd` lists.
fn close_above_2_by_listing() -> io::Result<()> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: closing an inherited descriptor nobody in this process owns; the listing's
        // own descriptor is already closed, so EBADF is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Resets every catchable signal to its default disposition and unblocks all signals.
pub fn reset_signals() -> io::Result<()> {
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL registers no handler code, so no async-signal-safety
        // requirement applies.
        unsafe { signal(sig, SigHandler::SigDfl) }?;
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    Ok(())
}

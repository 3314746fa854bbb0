//! Worker-side process hygiene, run first thing in the worker, single-threaded, before the
//! plugin is loaded (SPEC §7 steps 1-3).

use nix::sys::signal::{
    SigHandler, SigSet, SigmaskHow, Signal, signal, signal as signal_fn, sigprocmask,
};
use nix::unistd::{Pid, getppid, setsid};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Descriptor number the IPC channel is moved to.
pub const IPC_FD: RawFd = 3;

/// Leaves the parent's session and process group (so the watchdog can kill the worker's group
/// without touching the host's), and arms a death-of-parent signal.
///
/// `PR_SET_PDEATHSIG` has a race: the parent may die before it is armed. Checking after arming
/// that the parent is still there closes it: by `getppid()` against the pid the parent passed
/// us, or, in a PID namespace of our own (where `getppid()` is 0), by polling a pidfd on the
/// parent. The signal fires when the parent *thread* that spawned us exits, which is why the
/// host spawns every worker from one dedicated, never-exiting thread (`worker::spawn`).
pub fn enter_session_and_watch_parent(
    expected_parent: i32,
    parent_pidfd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
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
    let parent_alive = match parent_pidfd {
        Some(pidfd) => {
            let mut fds = [nix::poll::PollFd::new(pidfd, nix::poll::PollFlags::POLLIN)];
            // A pidfd polls readable once its process has exited.
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO)? == 0
        }
        None => getppid() == Pid::from_raw(expected_parent),
    };
    if !parent_alive {
        // `NotConnected`: nobody is left to tell, so callers stay quiet (a host that exits
        // early, e.g. on a usage error, must not leave a message behind it on the terminal).
        return Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "the host exited before the worker started",
        ));
    }
    Ok(())
}

/// Arms the death-of-parent signal again. The kernel clears it whenever the process's
/// credentials change (`prctl(2)`: effective or filesystem uid or gid), so the uid drop of
/// setup step 4 disarms what step 1 set up. Called after the last credential change. A host
/// that died while it was disarmed is caught by the go-ahead that follows: the worker waits
/// for the host's answer on the channel and exits at its end.
pub fn rearm_parent_death() -> io::Result<()> {
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
    Ok(())
}

/// Exit status of a worker that is its PID namespace's init and got `signal`: 128 + signal,
/// as a shell reports it.
pub const fn exit_code_for_signal(signal: i32) -> i32 {
    128 + signal
}

/// The init of a PID namespace ignores signals that have no handler when they come from inside
/// the namespace, which includes the kernel's per-process timers (`SIGPROF`, `SIGXCPU`) and
/// `abort()`'s `SIGABRT`. Installs handlers that end the worker with
/// [`exit_code_for_signal`] instead, so the host still learns what happened.
pub fn handle_signals_as_init() {
    extern "C" fn die(signal: libc::c_int) {
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(exit_code_for_signal(signal)) }
    }
    for signal in [Signal::SIGPROF, Signal::SIGXCPU, Signal::SIGABRT] {
        // SAFETY: the handler only calls _exit, which is async-signal-safe.
        let _ = unsafe { signal_fn(signal, SigHandler::Handler(die)) };
    }
}

/// From the init of a PID namespace: SIGKILLs every other process in it and reaps them all.
pub fn kill_other_processes_in_namespace() {
    // SAFETY: kill(-1) from a namespace's init reaches every other process in the namespace
    // and nothing outside it.
    if unsafe { libc::kill(-1, libc::SIGKILL) } != 0 {
        return; // ESRCH: there is nobody else.
    }
    loop {
        // SAFETY: waitpid with a null status pointer; blocks until a child is reaped or there
        // are none left (every one was just sent SIGKILL, so this ends).
        let rc = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::__WALL) };
        if rc <= 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
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

/// The entries of `dir` named `<prefix><pid>-...` left by a host that is gone: no process has
/// that pid, or it is this process's own (a sweep runs before this process makes any, so such
/// an entry is an earlier host's that had the same pid). Worker cgroups and temporary
/// directories are named this way, and swept with this.
pub(crate) fn left_by_gone_hosts(dir: &std::path::Path, prefix: &str) -> Vec<std::fs::DirEntry> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            name.to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|pid| {
                    pid == std::process::id()
                        || !std::path::Path::new(&format!("/proc/{pid}")).exists()
                })
        })
        .collect()
}

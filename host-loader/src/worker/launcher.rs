//! The launcher: a small fork server that workers are forked from, instead of from the host.
//!
//! Forking the host itself is slow (page tables are copied, so the cost grows with the host's
//! memory) and unsafe (the child of a multi-threaded process inherits locks held by threads
//! that do not exist in it). Spawning a fresh executable per worker avoids both, but pays for
//! `exec`, dynamic linking and runtime start-up on every launch. The launcher pays that once:
//!
//! - It is the `plugin-worker` executable started with `--launcher`, exec'd cleanly from the
//!   host's spawner thread ([`super::spawn`]); it is single-threaded, small, and never loads
//!   plugin code.
//! - For each launch the host sends it a [`LaunchRequest`] frame carrying two descriptors (the
//!   worker's end of the IPC socketpair and the write end of the capture pipe). The launcher
//!   forks with `CLONE_PARENT`, so the new worker is a child of the **host**, not of the
//!   launcher: the host opens a pidfd for it, reaps it with `wait4` and reads its resource
//!   usage exactly as for an exec'd worker. The launcher answers with the pid.
//! - The forked child moves the descriptors to 0, 1 and 2 and runs the same worker setup as an
//!   exec'd worker ([`super::child::run`]).
//! - To take the fork off the launch path, the launcher keeps one **spare** forked ahead of
//!   need (as Android's zygote keeps its pool of unspecialised processes): a child that has done
//!   the part of the setup that does not depend on the request (step 1: own session, death of
//!   parent) and waits on a private socket. A launch hands the request and its descriptors to
//!   the spare and answers with its pid at once; the next spare is forked after the answer.
//!   The launcher tells the host each spare's pid ([`LaunchReply::Spare`]) as it makes it, so
//!   the host, whose child the spare is, can kill and reap one that was never used.
//!
//! The fork is the raw `clone` system call, not glibc's `fork()`: `fork()` cannot create a
//! sibling. That skips glibc's at-fork handlers, which only matter for state of other threads
//! and for locks held at the time of the fork; the launcher has no other threads and forks only
//! from its idle loop, holding no lock.
//!
//! The launcher exits when the host closes its channel, and dies with the host's spawner thread
//! (`PR_SET_PDEATHSIG`). If it dies anyway, the next launch starts a new one.

use super::spawn;
use crate::ipc::fd::{recv_with_fds, send_with_fds};
use crate::ipc::frame::{self, HEADER_LEN};
use crate::ipc::message;
use crate::sandbox::process;
use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Largest launch request or reply (they hold a path at most).
const MAX_MESSAGE: usize = 8 * 1024;
/// How long the host waits for the launcher to answer before restarting it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Exit code of a launcher that could not set itself up.
const EXIT_SETUP_FAILED: i32 = 71;

/// Host to launcher: fork a worker. Two descriptors travel with it: the worker's IPC channel
/// and the capture pipe's write end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRequest {}

/// Launcher to host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LaunchReply {
    /// A spare was forked (a child of the host, waiting for a request). Sent between answers.
    Spare {
        /// Its pid.
        pid: i32,
    },
    /// The worker runs, as a child of the host.
    Launched {
        /// Its pid.
        pid: i32,
    },
    /// The fork failed.
    Failed {
        /// Why.
        message: String,
    },
}

/// The host's handle on one launcher process (one per worker executable).
#[derive(Debug)]
pub struct Launcher {
    exe: PathBuf,
    running: Mutex<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    pid: i32,
    pidfd: OwnedFd,
    socket: UnixStream,
    /// The spare the launcher announced and has not handed out yet.
    spare: Option<i32>,
}

impl Drop for Running {
    fn drop(&mut self) {
        super::measure::kill_tree(&self.pidfd, self.pid);
        let _ = super::measure::reap(self.pid);
        // The launcher is gone: read what it announced before dying, and end the unused spare
        // (our child) so it does not stay a zombie.
        if self.socket.set_nonblocking(true).is_ok() {
            while let Ok(frame) = frame::read_frame(&mut self.socket, MAX_MESSAGE) {
                if let Ok(LaunchReply::Spare { pid }) = message::decode(&frame) {
                    self.spare = Some(pid);
                }
            }
        }
        if let Some(pid) = self.spare.take()
            && let Ok(pidfd) = super::measure::pidfd_open(pid)
        {
            super::measure::kill_tree(&pidfd, pid);
            let _ = super::measure::reap(pid);
        }
    }
}

/// Starts the launcher for the default worker executable ([`spawn::find_worker_exe`]). Call it
/// early in the host's life (the CLI does, before reading any input), while the host is small
/// and has few threads; otherwise it starts with the first worker.
pub fn start_default() -> io::Result<()> {
    for_exe(&spawn::find_worker_exe()?).start()
}

/// The launcher for `exe`, shared by the whole host process. Not started until
/// [`Launcher::start`] or the first launch.
pub fn for_exe(exe: &Path) -> Arc<Launcher> {
    static LAUNCHERS: OnceLock<Mutex<Vec<Arc<Launcher>>>> = OnceLock::new();
    let launchers = LAUNCHERS.get_or_init(Default::default);
    let mut launchers = launchers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = launchers.iter().find(|l| l.exe == exe) {
        return Arc::clone(found);
    }
    let launcher = Arc::new(Launcher {
        exe: exe.to_path_buf(),
        running: Mutex::new(None),
    });
    launchers.push(Arc::clone(&launcher));
    launcher
}

impl Launcher {
    /// Starts the launcher process if it is not running. Call it early, while the host is
    /// small; later launches never depend on the host's size.
    pub fn start(&self) -> io::Result<()> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.is_none() {
            *running = Some(self.spawn()?);
        }
        Ok(())
    }

    /// The launcher's pid, if it runs.
    pub fn pid(&self) -> Option<i32> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.as_ref().map(|r| r.pid)
    }

    /// Forks a worker that gets `ipc` as its channel and `capture` as its stdout and stderr.
    /// Returns the worker's pid; the worker is a child of this process. A launcher that died or
    /// stopped answering is replaced once.
    pub fn launch(&self, ipc: &OwnedFd, capture: &OwnedFd) -> io::Result<i32> {
        let request = LaunchRequest {};
        let request = frame::encode(&message::encode(&request), MAX_MESSAGE)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut last_error = None;
        for _attempt in 0..2 {
            if running.is_none() {
                *running = Some(self.spawn()?);
            }
            let Some(launcher) = running.as_mut() else {
                continue;
            };
            match exchange(launcher, &request, ipc, capture) {
                Ok(Ok(pid)) => return Ok(pid),
                Ok(Err(message)) => {
                    return Err(io::Error::other(format!("launcher: {message}")));
                }
                Err(e) => {
                    // Dropping kills and reaps it; the next attempt starts a fresh one.
                    *running = None;
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("launcher unavailable")))
    }

    fn spawn(&self) -> io::Result<Running> {
        let (host_end, launcher_end) = UnixStream::pair()?;
        let mut command = Command::new(&self.exe);
        command
            .arg("--launcher")
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .env_clear()
            // One malloc arena: keeps address-space use close to memory use under RLIMIT_AS
            // in the workers forked from here.
            .env("MALLOC_ARENA_MAX", "1")
            .stdin(Stdio::from(OwnedFd::from(launcher_end)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = spawn::spawn(command).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start the launcher {}: {e}", self.exe.display()),
            )
        })?;
        let pid = child.id() as i32;
        drop(child);
        let pidfd = super::measure::pidfd_open(pid)?;
        host_end.set_read_timeout(Some(REPLY_TIMEOUT))?;
        host_end.set_write_timeout(Some(REPLY_TIMEOUT))?;
        Ok(Running {
            pid,
            pidfd,
            socket: host_end,
            spare: None,
        })
    }
}

/// Sends a launch request; the answer is the worker's pid or why the launcher failed.
fn exchange(
    launcher: &mut Running,
    request: &[u8],
    ipc: &OwnedFd,
    capture: &OwnedFd,
) -> io::Result<Result<i32, String>> {
    send_with_fds(
        &launcher.socket,
        request,
        &[ipc.as_raw_fd(), capture.as_raw_fd()],
    )?;
    loop {
        let reply = frame::read_frame(&mut launcher.socket, MAX_MESSAGE)
            .map_err(|e| io::Error::other(format!("launcher did not answer: {e}")))?;
        let reply = message::decode(&reply).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("launcher reply: {e}"))
        })?;
        match reply {
            LaunchReply::Spare { pid } => launcher.spare = Some(pid),
            LaunchReply::Launched { pid } => {
                if launcher.spare == Some(pid) {
                    launcher.spare = None;
                }
                return Ok(Ok(pid));
            }
            LaunchReply::Failed { message } => return Ok(Err(message)),
        }
    }
}

/// The launcher process: set up like a worker (own session, death of parent, descriptors,
/// signals), then hand one worker per request (the spare, or a fresh fork) until the host
/// closes the channel.
pub fn serve(parent: i32) -> ! {
    if let Err(e) = process::enter_session_and_watch_parent(parent, None) {
        if e.kind() != io::ErrorKind::NotConnected {
            eprintln!("plugin-worker --launcher: {e}");
        }
        super::child::exit(EXIT_SETUP_FAILED);
    }
    let mut channel = match process::take_ipc_channel() {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("plugin-worker --launcher: cannot set up the channel: {e}");
            super::child::exit(EXIT_SETUP_FAILED);
        }
    };
    if let Err(e) = process::reset_signals() {
        eprintln!("plugin-worker --launcher: cannot reset signals: {e}");
        super::child::exit(EXIT_SETUP_FAILED);
    }
    // Workers are born in a PID namespace of their own, where getppid() says nothing about the
    // host: they check the host is alive through this pidfd instead.
    let host = match super::measure::pidfd_open(parent) {
        Ok(pidfd) => pidfd,
        Err(e) => {
            eprintln!("plugin-worker --launcher: cannot watch the host: {e}");
            super::child::exit(EXIT_SETUP_FAILED);
        }
    };
    // Every worker is forked from here: compile its seccomp programs once, now, and each
    // worker inherits them.
    crate::sandbox::seccomp::precompile();
    let mut spare: Option<Spare> = None;
    loop {
        if spare.is_none() {
            spare = fork_spare(parent, &host, &channel);
            if let Some(made) = &spare {
                let announce = LaunchReply::Spare { pid: made.pid };
                let sent =
                    frame::write_frame(&mut channel, &message::encode(&announce), MAX_MESSAGE);
                if sent.is_err() {
                    super::child::exit(0);
                }
            }
        }
        let (request, fds, raw) = match receive(&mut channel) {
            Ok(Some(received)) => received,
            // The host closed the channel (or exited): it is done with us.
            Ok(None) => super::child::exit(0),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => super::child::exit(0),
            Err(e) => {
                eprintln!("plugin-worker --launcher: bad request: {e}");
                super::child::exit(EXIT_SETUP_FAILED);
            }
        };
        let reply = match spare.take() {
            Some(ready) => match ready.assign(&raw, &fds) {
                Ok(()) => LaunchReply::Launched { pid: ready.pid },
                // The spare is gone (killed?): fork one on demand instead.
                Err(_) => fork_worker(parent, &host, request, fds),
            },
            None => fork_worker(parent, &host, request, fds),
        };
        let sent = frame::write_frame(&mut channel, &message::encode(&reply), MAX_MESSAGE);
        if sent.is_err() {
            super::child::exit(0);
        }
    }
}

/// A pre-forked child waiting for its request on `control`.
struct Spare {
    pid: i32,
    control: UnixStream,
}

impl Spare {
    /// Hands the spare a request (`raw`: the frame as received) and its descriptors.
    fn assign(&self, raw: &[u8], fds: &[OwnedFd]) -> io::Result<()> {
        let fds: Vec<_> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        send_with_fds(&self.control, raw, &fds)
    }
}

/// Forks a spare: a child of the host that enters its own session and then waits for a
/// request from us. `None` if the fork fails (launches then fork on demand).
fn fork_spare(parent: i32, host: &OwnedFd, channel: &UnixStream) -> Option<Spare> {
    let (ours, theirs) = UnixStream::pair().ok()?;
    match clone_sibling() {
        -1 => None,
        0 => {
            // The spare: it must not keep the launcher's channel or our end of its own.
            // SAFETY: closing two descriptors this process owns and will not use again.
            unsafe { libc::close(channel.as_raw_fd()) };
            drop(ours);
            super::child::enter_session(parent, Some(host.as_fd()));
            let mut control = theirs;
            match receive(&mut control) {
                Ok(Some((request, fds, _))) => {
                    let Ok([ipc, capture]) = <[OwnedFd; 2]>::try_from(fds) else {
                        super::child::exit(EXIT_SETUP_FAILED)
                    };
                    drop(control);
                    become_worker(request, &ipc, &capture)
                }
                // The launcher went away without using us.
                _ => super::child::exit(0),
            }
        }
        pid => Some(Spare {
            pid: pid as i32,
            control: ours,
        }),
    }
}

/// `clone(CLONE_PARENT | CLONE_NEWPID | SIGCHLD)`: like `fork`, but the child is our
/// parent's (the host's), and the init of a new PID namespace (see `sandbox::namespaces`).
/// Without the privilege for a PID namespace, a plain sibling (the worker then reports the
/// layer missing). Returns the child's pid in the parent, 0 in the child, -1 on failure.
fn clone_sibling() -> libc::c_long {
    static NO_PID_NAMESPACE: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);
    let plain = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
    if !NO_PID_NAMESPACE.load(std::sync::atomic::Ordering::Relaxed) {
        let pid = raw_clone(plain | libc::CLONE_NEWPID as libc::c_ulong);
        if pid != -1 {
            return pid;
        }
        let error = io::Error::last_os_error().raw_os_error();
        if !matches!(error, Some(libc::EPERM | libc::EINVAL | libc::ENOSPC)) {
            return -1;
        }
        NO_PID_NAMESPACE.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    raw_clone(plain)
}

fn raw_clone(flags: libc::c_ulong) -> libc::c_long {
    // SAFETY: raw clone without CLONE_VM and without a new stack behaves like fork(): the child
    // continues here on a copy of this (single-threaded, lock-free at this point) process. The
    // remaining arguments (parent/child tid pointers, tls) are unused and null.
    unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) }
}

/// A request, its descriptors, and the frame as received (header included).
type Received = (LaunchRequest, Vec<OwnedFd>, Vec<u8>);

/// Reads one request and the descriptors that came with it; `None` at end of stream.
fn receive(channel: &mut UnixStream) -> io::Result<Option<Received>> {
    let mut buf = vec![0u8; HEADER_LEN + MAX_MESSAGE];
    let (mut have, fds) = recv_with_fds(channel, &mut buf)?;
    if have == 0 {
        return Ok(None);
    }
    while have < HEADER_LEN {
        have += read_more(channel, &mut buf, have)?;
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(buf.get(..HEADER_LEN).unwrap_or_default());
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("request of {len} bytes"),
        ));
    }
    while have < HEADER_LEN + len {
        have += read_more(channel, &mut buf, have)?;
    }
    let body = buf.get(HEADER_LEN..HEADER_LEN + len).unwrap_or_default();
    let request = message::decode(body)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    buf.truncate(HEADER_LEN + len);
    Ok(Some((request, fds, buf)))
}

fn read_more(channel: &mut UnixStream, buf: &mut [u8], have: usize) -> io::Result<usize> {
    let rest = buf.get_mut(have..).unwrap_or_default();
    match channel.read(rest)? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        n => Ok(n),
    }
}

fn fork_worker(
    parent: i32,
    host: &OwnedFd,
    request: LaunchRequest,
    fds: Vec<OwnedFd>,
) -> LaunchReply {
    let Ok([ipc, capture]) = <[OwnedFd; 2]>::try_from(fds) else {
        return LaunchReply::Failed {
            message: "a launch request carries exactly two descriptors".into(),
        };
    };
    match clone_sibling() {
        -1 => LaunchReply::Failed {
            message: format!("clone failed: {}", io::Error::last_os_error()),
        },
        0 => {
            super::child::enter_session(parent, Some(host.as_fd()));
            become_worker(request, &ipc, &capture);
        }
        pid => LaunchReply::Launched { pid: pid as i32 },
    }
}

/// In the forked child, after [`super::child::enter_session`]: put the channel on 0 and the
/// capture pipe on 1 and 2, then run the worker. Never returns.
fn become_worker(_request: LaunchRequest, ipc: &OwnedFd, capture: &OwnedFd) -> ! {
    for (from, to) in [(ipc, 0), (capture, 1), (capture, 2)] {
        // SAFETY: dup2 onto a standard descriptor this process owns; `from` is a valid open
        // descriptor. The duplicate does not carry close-on-exec.
        if unsafe { libc::dup2(from.as_raw_fd(), to) } != to {
            super::child::exit(EXIT_SETUP_FAILED);
        }
    }
    super::child::run()
}

//! Measuring a worker from outside: CPU time, resident memory, exit status. The parent reads
//! these from the kernel, never from anything the worker says.

use std::io;
use std::time::Duration;

/// Opens a pidfd for `pid` (a child of ours, not yet reaped, so the pid cannot be reused).
pub fn pidfd_open(pid: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends SIGKILL through the pidfd (immune to pid reuse), then to the worker's process group
/// so that its children die too.
pub fn kill_tree(pidfd: &std::os::fd::OwnedFd, pid: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number and no siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<u8>(),
            0,
        )
    };
    // The worker called setsid(), so its process group id is its pid. Until it is reaped the
    // pid (and so the group id) cannot be reused.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The CPU-time clock of process `pid` (all threads), looked up once per worker: glibc checks
/// it with an extra system call on every lookup.
pub fn cpu_clock(pid: i32) -> Option<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: writes one clockid_t into `clock`, which is a valid local.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return None;
    }
    Some(clock)
}

/// CPU time (user + system, all threads) consumed so far on `clock` (from [`cpu_clock`]), in
/// nanoseconds.
pub fn cpu_ns(clock: Option<libc::clockid_t>) -> Option<u64> {
    let clock = clock?;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec into `ts`, which is a valid local.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// A worker's peak resident set (`VmHWM` in `/proc/<pid>/status`), resettable through
/// `/proc/<pid>/clear_refs` (value 5). Both files stay open: a call costs two system calls on
/// open descriptors, not two path lookups.
#[derive(Debug)]
pub struct PeakRss {
    status: Option<std::fs::File>,
    clear_refs: Option<std::fs::File>,
}

impl PeakRss {
    /// Opens the files of `pid` (a child of ours, not yet reaped). Missing files make the
    /// readings 0, never an error.
    pub fn open(pid: i32) -> PeakRss {
        PeakRss {
            status: std::fs::File::open(format!("/proc/{pid}/status")).ok(),
            clear_refs: std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/{pid}/clear_refs"))
                .ok(),
        }
    }

    /// Starts a new measurement period.
    pub fn reset(&self) {
        use std::io::Write;
        if let Some(mut file) = self.clear_refs.as_ref() {
            let _ = file.write(b"5");
        }
    }

    /// Peak resident set since the last reset, in KiB.
    pub fn read_kb(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 4096];
        let n = self.status.as_ref()?.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(buf.get(..n)?).ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

/// How a reaped worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by a signal.
    Signal(i32),
}

impl Exit {
    /// Human description, e.g. `killed by signal SIGSEGV (11)`.
    pub fn describe(self) -> String {
        match self {
            Exit::Code(code) => format!("exited with status {code}"),
            Exit::Signal(sig) => {
                let name = nix::sys::signal::Signal::try_from(sig)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown");
                format!("killed by signal {name} ({sig})")
            }
        }
    }
}

/// What `wait4` says about a finished worker.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    /// How it ended.
    pub exit: Exit,
    /// Total CPU time of its life, in nanoseconds.
    pub cpu_ns: u64,
    /// Peak resident set of its life, in KiB.
    pub max_rss_kb: u64,
}

/// Reaps the child `pid` (already killed) on a background thread, then runs `after` (e.g. to
/// remove its cgroup). Tearing a process down takes the kernel a fraction of a millisecond that
/// the caller need not wait for. Falls back to reaping here if the thread cannot start.
pub fn reap_later(pid: i32, after: impl FnOnce() + Send + 'static) {
    run_on_reaper(Box::new(move || {
        let _ = reap(pid);
        after();
    }));
}

/// Waits (at most `timeout`) until the background reaper has finished what it was given before
/// this call: the workers retired without waiting are reaped and their temporary directories
/// removed. Returns whether it finished in time.
pub fn finish_background_reaping(timeout: Duration) -> bool {
    let (done, finished) = std::sync::mpsc::sync_channel(1);
    run_on_reaper(Box::new(move || {
        let _ = done.send(());
    }));
    finished.recv_timeout(timeout).is_ok()
}

type ReaperJob = Box<dyn FnOnce() + Send>;

/// Runs `job` on the reaper thread, in order with earlier jobs; here if there is no thread.
fn run_on_reaper(job: ReaperJob) {
    use std::sync::mpsc::{Sender, channel};
    use std::sync::{Mutex, OnceLock};
    static REAPER: OnceLock<Option<Mutex<Sender<ReaperJob>>>> = OnceLock::new();
    let reaper = REAPER.get_or_init(|| {
        let (tx, rx) = channel::<ReaperJob>();
        std::thread::Builder::new()
            .name("worker-reaper".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .ok()
            .map(|_| Mutex::new(tx))
    });
    let unsent = match reaper {
        Some(sender) => match sender.lock() {
            Ok(sender) => sender.send(job).err().map(|e| e.0),
            Err(_) => Some(job),
        },
        None => Some(job),
    };
    if let Some(job) = unsent {
        job();
    }
}

/// Waits for the child `pid` to end and collects its status and resource usage.
pub fn reap(pid: i32) -> io::Result<Reaped> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value for it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes into `status` and `usage`, both valid locals.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let exit = if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    };
    let tv_ns = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000;
    Ok(Reaped {
        exit,
        cpu_ns: tv_ns(usage.ru_utime) + tv_ns(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss as u64,
    })
}

//! Worker-side resource limits (`setrlimit`, and a per-call CPU timer).
//!
//! These are the kernel's backstop; the parent-side watchdog is the precise per-call judge of
//! time. CPU is limited per call, not per life: a warm worker serves many calls. `RLIMIT_CPU`
//! counts the whole life of the process, and moving it before every call to "CPU used so far +
//! allowance" does not work, because what a process can read of its own CPU time
//! (`getrusage`) is scaled and lags the tick-based clock the limit is checked against (a
//! worker serving 200,000 calls was killed with `SIGXCPU` seconds early). So the worker arms
//! `ITIMER_PROF`, which runs on that same clock, relative to the start of each call
//! ([`arm_cpu_for_call`]); its `SIGPROF` (default action: terminate) ends a call that overruns
//! its allowance by a second.

use nix::sys::resource::{Resource, setrlimit};
use plugin_manifest::Limits;
use std::io;

/// Most descriptors a plugin may hold open.
pub const MAX_OPEN_FILES: u64 = 64;

/// Applies the per-worker limits: address space, file size, open files, no core dumps.
pub fn apply(limits: &Limits, address_space_bytes: u64) -> io::Result<()> {
    setrlimit(
        Resource::RLIMIT_AS,
        address_space_bytes,
        address_space_bytes,
    )?;
    setrlimit(
        Resource::RLIMIT_FSIZE,
        limits.max_file_size_bytes,
        limits.max_file_size_bytes,
    )?;
    setrlimit(Resource::RLIMIT_NOFILE, MAX_OPEN_FILES, MAX_OPEN_FILES)?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    arm_cpu_for_call(limits.cpu_ms)
}

/// Slack on top of a call's CPU allowance before the in-process timer fires, so that the
/// parent's finer watchdog normally ends the call first.
const CPU_TIMER_SLACK_MS: u64 = 1000;

/// Arms `ITIMER_PROF` to fire after `cpu_ms` (plus [`CPU_TIMER_SLACK_MS`]) of CPU time from
/// now, counting every thread of the process. One system call per call.
pub fn arm_cpu_for_call(cpu_ms: u64) -> io::Result<()> {
    let total_ms = cpu_ms.saturating_add(CPU_TIMER_SLACK_MS);
    let timer = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: (total_ms / 1000).min(i64::MAX as u64) as libc::time_t,
            tv_usec: ((total_ms % 1000) * 1000) as libc::suseconds_t,
        },
    };
    // SAFETY: setitimer reads one itimerval from a valid local and writes no old value.
    if unsafe { libc::setitimer(libc::ITIMER_PROF, &timer, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

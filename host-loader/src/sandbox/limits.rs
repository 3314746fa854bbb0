//! Worker-side resource limits (`setrlimit`).
//!
//! These are the kernel's backstop; the parent-side watchdog is the precise per-call judge of
//! time. `RLIMIT_CPU` counts the whole life of the process in seconds, so the worker moves it
//! before every call to "CPU used so far + this call's allowance" ([`arm_cpu_for_call`]).

use nix::sys::resource::{Resource, UsageWho, getrusage, setrlimit};
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

/// Sets `RLIMIT_CPU` so that this call gets `cpu_ms` (rounded up to whole seconds, plus one
/// second of slack so the parent's finer watchdog normally fires first): `SIGXCPU` at the soft
/// limit, `SIGKILL` a second later.
pub fn arm_cpu_for_call(cpu_ms: u64) -> io::Result<()> {
    let usage = getrusage(UsageWho::RUSAGE_SELF)?;
    let used_secs = (usage.user_time().tv_sec() + usage.system_time().tv_sec()).max(0) as u64 + 1;
    let soft = used_secs + cpu_ms.div_ceil(1000) + 1;
    setrlimit(Resource::RLIMIT_CPU, soft, soft + 1)?;
    Ok(())
}

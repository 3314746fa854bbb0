//! Hostile: installs do-nothing handlers for SIGXCPU and SIGPROF, then spins. The soft CPU limit
//! only sends SIGXCPU, so the hard `RLIMIT_CPU` (SIGKILL) or the watchdog must end it with
//! `cpu_limit` / `timeout`.
use hostile_common::{Attempt, errno_text};
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-sigxcpu",
    description: "Ignores the CPU limit signals and spins in analyze",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { cpu_ms: 500, wall_ms: 5000 },
}

/// Does nothing.
extern "C" fn ignore(_signal: libc::c_int) {}

/// Installs [`ignore`] for `signal` with `SA_RESTART`; the error text if that failed.
fn install(signal: libc::c_int) -> Result<(), String> {
    // SAFETY: sigaction is a plain C struct for which all-zero bytes are a valid value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is fully initialised and its handler is an `extern "C" fn(c_int)` that
    // is async-signal-safe (it does nothing); a null old-action pointer is allowed.
    let rc = unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
    if rc == 0 { Ok(()) } else { Err(errno_text()) }
}

/// Ignores SIGXCPU and SIGPROF, then spins forever.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    // Whether or not the handlers went in, the spin below is the attempt.
    let _ = std::hint::black_box((install(libc::SIGXCPU), install(libc::SIGPROF)));
    let mut counter = story.text.len() as u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

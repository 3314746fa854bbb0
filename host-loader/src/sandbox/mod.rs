//! How confinement is enforced, one file per mechanism.
//!
//! - [`process`]: worker-side steps before anything else runs: own session, death of parent,
//!   inherited descriptors closed, signal dispositions and mask reset.
//! - [`limits`]: worker-side resource limits (`setrlimit`).
//! - [`cgroup`]: parent-side memory cgroup, when the machine offers one; it turns "out of
//!   memory" into a kernel-attested fact instead of a guess.
//!
//! Each applied mechanism is reported by name as a layer ([`Layer`]); the names appear in the
//! worker's enforcement report. Seccomp, Landlock, namespaces and the uid drop come next (SPEC
//! §7 steps 4, 6-9) and plug into the same list.

pub mod cgroup;
pub mod limits;
pub mod process;

/// Names of the enforcement layers, as reported.
#[derive(Debug)]
pub struct Layer;

impl Layer {
    /// Own session and process group.
    pub const SESSION: &'static str = "session";
    /// `PR_SET_PDEATHSIG` armed without a race.
    pub const PARENT_DEATH: &'static str = "parent-death-signal";
    /// Every inherited descriptor but the IPC channel closed.
    pub const FD_CLOSING: &'static str = "fd-closing";
    /// Signal dispositions and mask reset.
    pub const SIGNAL_RESET: &'static str = "signal-reset";
    /// `setrlimit` limits.
    pub const RLIMITS: &'static str = "rlimits";
    /// Parent-side wall-clock and CPU watchdog.
    pub const WATCHDOG: &'static str = "watchdog";
    /// Memory cgroup (v1 or v2).
    pub const CGROUP_MEMORY: &'static str = "cgroup-memory";
}

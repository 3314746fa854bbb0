//! How confinement is enforced, one file per mechanism.
//!
//! - [`process`]: worker-side steps before anything else runs: own session, death of parent,
//!   inherited descriptors closed, signal dispositions and mask reset.
//! - [`limits`]: worker-side resource limits (`setrlimit`).
//! - [`identity`]: worker-side uid/gid and capability drop when started by root.
//! - [`namespaces`]: PID namespace (made by the launcher), user, mount, IPC, UTS, network;
//!   the private tmpfs.
//! - [`landlock`]: worker-side filesystem, TCP and scope rules.
//! - [`seccomp`]: the system call allow-list, as data, and its user-notification listener.
//! - [`cgroup`]: parent-side memory cgroup, when the machine offers one; it turns "out of
//!   memory" into a kernel-attested fact instead of a guess.
//!
//! Each applied mechanism is reported by name as a layer ([`Layer`]); the names appear in the
//! worker's enforcement report, and a level's required layers ([`plugin_manifest::SecurityLevel`])
//! are checked against them before the plugin is loaded.

pub mod cgroup;
pub mod identity;
pub mod landlock;
pub mod limits;
pub mod namespaces;
pub mod process;
pub mod seccomp;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What the host asks the worker to apply before loading the plugin (computed from the grants,
/// the limits and the host's situation). A `None` layer is not applied (and so not reported).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confinement {
    /// The uid and gid to move to when the worker starts as root.
    pub drop_to: Option<u32>,
    /// Enter user, mount, IPC and UTS namespaces; `Some(true)` adds a private network.
    pub namespaces: Option<bool>,
    /// Landlock rules.
    pub landlock: Option<landlock::LandlockSpec>,
    /// Seccomp allow-list for these grants.
    pub seccomp: Option<seccomp::SyscallGrants>,
    /// The worker's private temporary directory (its working directory), made by the host.
    pub temp_dir: Option<PathBuf>,
    /// Size cap of the private temporary directory, in bytes.
    pub temp_bytes: u64,
}

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
    /// Task cgroup (v1 pids): `pids.max` caps the worker's threads and processes.
    pub const CGROUP_PIDS: &'static str = "cgroup-pids";
    /// Unprivileged uid/gid, no capabilities.
    pub const UID_DROP: &'static str = "uid-drop";
    /// PID namespace with the worker as its init: the whole tree dies with it.
    pub const PID_NAMESPACE: &'static str = "pid-namespace";
    /// User, mount, IPC, UTS (and network unless granted) namespaces.
    pub const NAMESPACES: &'static str = "namespaces";
    /// The private temporary directory is a size-capped tmpfs of the worker's own.
    pub const PRIVATE_TMPFS: &'static str = "private-tmpfs";
    /// `PR_SET_NO_NEW_PRIVS`.
    pub const NO_NEW_PRIVS: &'static str = "no-new-privs";
    /// Landlock filesystem, TCP and scope rules, all enforced.
    pub const LANDLOCK: &'static str = "landlock";
    /// Landlock applied, but the kernel cannot enforce all of its rules (see the reason the
    /// worker gives for `landlock` being missing).
    pub const LANDLOCK_PARTIAL: &'static str = "landlock-partial";
    /// Seccomp allow-list with a user-notification listener in the host.
    pub const SECCOMP: &'static str = "seccomp";
}

//! Landlock (SPEC §7 step 8): what the worker's files, TCP ports and signals can reach.
//!
//! The worker may read (and map executable) only what loading needs — the shared libraries of
//! the plugin's closure that are not loaded yet, the loader's cache — plus a few harmless
//! devices; it may read and write its private temporary directory; the plugin's `fs.read` and
//! `fs.write` grants add their paths. Every other file access is `EACCES`. TCP `bind` is always
//! denied and `connect` only to the ports of `net.connect` grants. Signals and abstract Unix
//! sockets are scoped to the worker's own Landlock domain: it cannot signal its parent or
//! connect to the host's abstract sockets.
//!
//! The plugin itself is loaded from a sealed memfd, which Landlock does not restrict (it is not
//! reachable by path), so the plugin file never needs a rule.

use landlock::{
    ABI, Access, AccessFs, AccessNet, LandlockStatus, NetPort, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::PathBuf;

/// Newest ABI this code asks for (the crate's newest): filesystem, TCP (v4), scopes (v6).
const ABI_WANTED: ABI = ABI::V6;

/// What the worker may reach, computed by the host from the grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockSpec {
    /// Read (and execute) only: files or directories (and everything beneath).
    pub read: Vec<PathBuf>,
    /// Read and write.
    pub write: Vec<PathBuf>,
    /// TCP ports `connect` may reach.
    pub tcp_connect: Vec<u16>,
}

/// Files every worker may read: the loader's cache and harmless devices.
pub const ALWAYS_READABLE: &[&str] =
    &["/etc/ld.so.cache", "/dev/null", "/dev/zero", "/dev/urandom"];

/// The kernel's Landlock ABI version, 0 when Landlock is missing or disabled.
pub fn kernel_abi() -> u32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag, the call only returns
    // the ABI version (or an error); it touches no memory.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(version).unwrap_or(0)
}

/// Restricts the calling thread (and its future children) to `spec`. Returns the kernel ABI
/// in use; an error if Landlock is missing or the ruleset was not fully enforced.
pub fn apply(spec: &LandlockSpec) -> io::Result<Applied> {
    let abi = kernel_abi();
    if abi == 0 {
        return Err(io::Error::other(
            "Landlock is not available in this kernel (needs Linux 5.13+ with lsm=landlock)",
        ));
    }
    let fail = |what: &str, e: &dyn std::fmt::Display| io::Error::other(format!("{what}: {e}"));
    let read = AccessFs::from_read(ABI_WANTED);
    let write = AccessFs::from_all(ABI_WANTED);
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_WANTED))
        .map_err(|e| fail("handled filesystem access", &e))?;
    // TCP rules need ABI 4, scopes ABI 6: ask for them when the kernel has them, so a kernel
    // between 5.13 and 6.6 still gets the filesystem rules (reported with its ABI).
    if abi >= 4 {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(ABI_WANTED))
            .map_err(|e| fail("handled network access", &e))?;
    }
    if abi >= 6 {
        ruleset = ruleset
            .scope(Scope::from_all(ABI_WANTED))
            .map_err(|e| fail("scopes", &e))?;
    }
    let mut created = ruleset
        .create()
        .map_err(|e| fail("creating the ruleset", &e))?;
    let paths = ALWAYS_READABLE
        .iter()
        .map(|p| (PathBuf::from(p), read))
        .chain(spec.read.iter().map(|p| (p.clone(), read)))
        .chain(spec.write.iter().map(|p| (p.clone(), write)));
    for (path, access) in paths {
        // A granted path that does not exist (yet) gets no rule: it stays unreachable.
        let Ok(fd) = PathFd::new(&path) else {
            continue;
        };
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| fail(&format!("rule for {}", path.display()), &e))?;
    }
    if abi >= 4 {
        for port in &spec.tcp_connect {
            created = created
                .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
                .map_err(|e| fail(&format!("rule for TCP port {port}"), &e))?;
        }
    }
    let status = created
        .restrict_self()
        .map_err(|e| fail("restricting the worker", &e))?;
    match (status.ruleset, status.landlock) {
        (RulesetStatus::NotEnforced, _) | (_, LandlockStatus::NotEnabled) => {
            Err(io::Error::other("Landlock did not enforce the ruleset"))
        }
        // `PartiallyEnforced` also means "a rule on a file dropped the directory-only rights
        // it cannot have" (our library-closure rules are files), so the kernel's ABI is what
        // says whether a part of the rules is lost.
        _ => Ok(Applied {
            abi,
            lacking: lacking(abi),
        }),
    }
}

/// What [`apply`] achieved: the kernel's ABI, and what this ABI cannot enforce of the rules
/// (empty when everything is enforced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The kernel's Landlock ABI.
    pub abi: u32,
    /// Rules the kernel could not enforce, in words.
    pub lacking: Vec<String>,
}

/// The parts of the rules a kernel with `abi` cannot enforce.
fn lacking(abi: u32) -> Vec<String> {
    let mut lacking = Vec::new();
    if abi < 4 {
        lacking.push("TCP connect/bind rules (ABI 4)".to_string());
    }
    if abi < 6 {
        lacking.push("signal and abstract-socket scoping (ABI 6)".to_string());
    }
    lacking
}

/// Where the dynamic loader looks for libraries on this kind of system (after `RUNPATH`, which
/// inspection already restricts to the plugin's own directory).
const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// Most libraries followed when computing a closure (a real one has a handful).
const MAX_CLOSURE: usize = 64;

/// The files of the library closure of `needed` (the plugin's `DT_NEEDED`): each name resolved
/// in the standard directories, then their own `DT_NEEDED`, transitively. These are what the
/// worker's Landlock rules let the loader read; names that do not resolve are left to fail at
/// load time.
pub fn library_closure(needed: &[String]) -> Vec<PathBuf> {
    let mut queue: Vec<String> = needed.to_vec();
    let mut seen = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    while let Some(name) = queue.pop() {
        if files.len() >= MAX_CLOSURE || !seen.insert(name.clone()) || name.contains('/') {
            continue;
        }
        let Some(path) = LIBRARY_DIRS
            .iter()
            .map(|dir| std::path::Path::new(dir).join(&name))
            .find(|path| path.is_file())
        else {
            continue;
        };
        if let Ok(bytes) = crate::plugin::read_bounded(&path) {
            queue.extend(crate::elf::needed_libraries(&bytes));
        }
        files.push(path);
    }
    files
}

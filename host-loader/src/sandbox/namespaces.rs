//! Namespaces (SPEC §7 step 6).
//!
//! - **PID**: made by the launcher at `clone` time (`CLONE_NEWPID`), so the worker is the init
//!   of its own PID namespace: when it dies, the kernel kills every process left in the
//!   namespace, whatever `setsid` or double forks they did. Killing the worker through its
//!   pidfd therefore kills its whole tree, with no pid-reuse race. The plugin sees no host
//!   process at all. (Init ignores signals it has no handler for when they come from inside the
//!   namespace, so the worker installs handlers for the signals it relies on; see `child`.)
//! - **user, mount, IPC, UTS** and, unless the plugin may open sockets, **network**: entered
//!   here with `unshare`. The new user namespace maps only the worker's own (unprivileged)
//!   uid and gid. Inside the mount namespace the worker's private temporary directory becomes a
//!   size-capped tmpfs, which disappears with the namespace. Then every capability the new user
//!   namespace granted is dropped.

use super::identity;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Which namespaces were entered, for the enforcement report.
#[derive(Debug, Default)]
pub struct Entered {
    /// Names: `user`, `mount`, `ipc`, `uts`, `net`.
    pub names: Vec<&'static str>,
    /// Whether the private temporary directory is a tmpfs of its own.
    pub private_tmpfs: bool,
}

/// Whether this process is the init of a PID namespace (the launcher made it so).
pub fn in_own_pid_namespace() -> bool {
    std::process::id() == 1
}

/// Enters new user, mount, IPC, UTS (and, with `private_network`, network) namespaces, mounts
/// a tmpfs of `temp_bytes` on `temp_dir` (when given), and drops the capabilities the user
/// namespace granted.
pub fn enter(
    private_network: bool,
    temp_dir: Option<&Path>,
    temp_bytes: u64,
) -> io::Result<Entered> {
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let mut flags =
        libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    let mut names = vec!["user", "mount", "ipc", "uts"];
    if private_network {
        flags |= libc::CLONE_NEWNET;
        names.push("net");
    }
    // SAFETY: unshare takes flags only; the process is single-threaded, as CLONE_NEWUSER needs.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(io::Error::other(format!(
            "unshare: {} (user namespaces may be disabled: /proc/sys/user/max_user_namespaces)",
            io::Error::last_os_error()
        )));
    }
    // Changing user namespace made the process non-dumpable, which makes /proc/self/*_map
    // root-owned; we need to write them.
    // SAFETY: plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong, 0, 0, 0) };
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;

    let mut private_tmpfs = false;
    if let Some(dir) = temp_dir {
        make_mounts_private()?;
        mount_tmpfs(dir, temp_bytes)?;
        private_tmpfs = true;
    }
    identity::clear_capabilities()?;
    // SAFETY: plain integer arguments; nobody needs to read this process's memory.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) };
    Ok(Entered {
        names,
        private_tmpfs,
    })
}

/// Stops mount events from propagating out of (or into) the new mount namespace.
fn make_mounts_private() -> io::Result<()> {
    // SAFETY: all pointers are valid C strings or null, as mount(2) allows for MS_PRIVATE.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::other(format!(
            "making mounts private: {}",
            io::Error::last_os_error()
        )));
    }
    Ok(())
}

fn mount_tmpfs(dir: &Path, bytes: u64) -> io::Result<()> {
    let target = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("temporary directory path contains NUL"))?;
    // At least one page; inodes bounded too, so the directory cannot be filled with empty files.
    let options = CString::new(format!("size={},nr_inodes=4096,mode=0700", bytes.max(4096)))
        .map_err(|_| io::Error::other("tmpfs options"))?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"plugin-tmp".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::other(format!(
            "mounting a tmpfs on {}: {}",
            dir.display(),
            io::Error::last_os_error()
        )));
    }
    Ok(())
}

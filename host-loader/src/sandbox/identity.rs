//! Who the worker runs as (SPEC §7 step 4).
//!
//! Root makes most limits void: `RLIMIT_NPROC` does not apply to it, and it may signal or
//! ptrace its parent. A worker started by a root host therefore moves to an unprivileged
//! uid/gid and drops every capability, the bounding set included (so nothing it executes can
//! regain one), before anything else that the plugin could influence.

use std::io;

/// The uid and gid a root host's workers run as (`nobody`/`nogroup` on Debian).
pub const UNPRIVILEGED_ID: u32 = 65534;

/// `_LINUX_CAPABILITY_VERSION_3`.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// If running as root: empties the capability bounding and ambient sets, drops supplementary
/// groups, and moves to `id` as real, effective and saved uid and gid. Then checks that no
/// capability is left. Returns whether anything was dropped.
pub fn drop_root(id: u32) -> io::Result<bool> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(false);
    }
    for cap in 0..=63 {
        // SAFETY: prctl(PR_CAPBSET_DROP) takes a capability number; EINVAL past the last one.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return Err(io::Error::other(format!(
                "dropping capability {cap} from the bounding set: {}",
                io::Error::last_os_error()
            )));
        }
    }
    // SAFETY: clears the ambient set; plain integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    // SAFETY: setgroups with an empty list reads no memory.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(with_context("setgroups", io::Error::last_os_error()));
    }
    // SAFETY: plain integer arguments.
    if unsafe { libc::setresgid(id, id, id) } != 0 {
        return Err(with_context("setresgid", io::Error::last_os_error()));
    }
    // SAFETY: plain integer arguments. Without SECBIT_KEEP_CAPS this also clears the permitted
    // and effective capability sets.
    if unsafe { libc::setresuid(id, id, id) } != 0 {
        return Err(with_context("setresuid", io::Error::last_os_error()));
    }
    if has_capabilities()? {
        return Err(io::Error::other("capabilities remain after the uid change"));
    }
    Ok(true)
}

/// Clears every capability of the calling thread (effective, permitted, inheritable), e.g.
/// the full set a new user namespace grants its creator.
pub fn clear_capabilities() -> io::Result<()> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: capset reads a version-3 header and two data structs, both valid locals.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(with_context("capset", io::Error::last_os_error()));
    }
    Ok(())
}

/// Whether the calling thread holds any effective or permitted capability.
pub fn has_capabilities() -> io::Result<bool> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two data structs into `data` for a version-3 header.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(with_context("capget", io::Error::last_os_error()));
    }
    Ok(data.iter().any(|d| d.effective != 0 || d.permitted != 0))
}

/// Whether the calling process runs without privilege: not uid 0 in any of real, effective or
/// saved, and without capabilities.
pub fn is_unprivileged() -> bool {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid writes three uids into valid locals.
    let rc = unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    rc == 0 && r != 0 && e != 0 && s != 0 && has_capabilities().is_ok_and(|has| !has)
}

fn with_context(call: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{call}: {e}"))
}

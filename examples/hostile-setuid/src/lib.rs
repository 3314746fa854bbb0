//! Hostile: tries to gain or use privilege: `setuid(0)`, `setgid(0)`, `chown(".", 0, 0)`,
//! mounting a tmpfs on `/mnt`, `unshare(CLONE_NEWUSER)` and `chroot("/")`. The uid drop,
//! `no_new_privs` and the seccomp filter must make every one of them fail.
use hostile_common::{Attempt, rc_text};
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-setuid",
    description: "Tries to change its user id, mount a file system and chroot",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

/// Records `name: ok` or `name: <errno>` and returns whether the call succeeded.
fn record(results: &mut Vec<String>, name: &str, rc: libc::c_int) -> bool {
    results.push(format!("{name}: {}", rc_text(rc.into())));
    rc == 0
}

/// Makes every call in turn; escaped if setuid, mount or chroot succeeded.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let _ = story;
    let mut results = Vec::new();
    // SAFETY: setuid has no memory-safety preconditions.
    let rc = unsafe { libc::setuid(0) };
    let setuid = record(&mut results, "setuid(0)", rc);
    // SAFETY: setgid has no memory-safety preconditions.
    let rc = unsafe { libc::setgid(0) };
    record(&mut results, "setgid(0)", rc);
    // SAFETY: the path is a NUL-terminated string.
    let rc = unsafe { libc::chown(c".".as_ptr(), 0, 0) };
    record(&mut results, "chown(\".\", 0, 0)", rc);
    // SAFETY: every string is NUL-terminated, and tmpfs accepts null data.
    let rc = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/mnt".as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    let mount = record(&mut results, "mount(tmpfs on /mnt)", rc);
    if mount {
        // Undo the mount so a run without a sandbox leaves the machine as it was.
        // SAFETY: the path is a NUL-terminated string.
        unsafe { libc::umount2(c"/mnt".as_ptr(), libc::MNT_DETACH) };
    }
    // SAFETY: unshare has no memory-safety preconditions.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
    record(&mut results, "unshare(CLONE_NEWUSER)", rc);
    // SAFETY: the path is a NUL-terminated string.
    let rc = unsafe { libc::chroot(c"/".as_ptr()) };
    let chroot = record(&mut results, "chroot(\"/\")", rc);
    Attempt {
        escaped: setuid || mount || chroot,
        detail: results.join("; "),
    }
}

//! Hostile: replaces its own worker process with `/bin/sh -c "echo escaped > MARKER"` by calling
//! `execv` directly (no fork), MARKER being the path in the story's text. The seccomp filter
//! must refuse `execve` for a plugin without `process.spawn`.
use hostile_common::{Attempt, errno_text};
use plugin_sdk::{Story, hook, plugin};
use std::ffi::CString;

plugin! {
    name: "hostile-exec",
    description: "Tries to replace its worker process with a shell",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

const DEFAULT_MARKER: &str = "/tmp/hostile-exec.marker";

/// `path` quoted for the shell.
fn shell_quote(path: &str) -> String {
    format!("'{}'", path.replace('\'', r"'\''"))
}

/// Calls `execv("/bin/sh", ...)`; returns only if the exec failed.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let marker = match story.text.trim() {
        "" => DEFAULT_MARKER,
        path => path,
    };
    let script = format!("echo escaped > {}", shell_quote(marker));
    let (Ok(program), Ok(arg0), Ok(flag), Ok(script)) = (
        CString::new("/bin/sh"),
        CString::new("sh"),
        CString::new("-c"),
        CString::new(script),
    ) else {
        return Attempt::stopped("the marker path contains a NUL byte");
    };
    let argv = [
        arg0.as_ptr(),
        flag.as_ptr(),
        script.as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: `program` and every argv entry are NUL-terminated strings that outlive the call,
    // and argv ends with a null pointer.
    unsafe { libc::execv(program.as_ptr(), argv.as_ptr()) };
    Attempt::stopped(format!("execv(/bin/sh) failed: {}", errno_text()))
}

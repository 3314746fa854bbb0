//! Shared pieces of the hostile example plugins: the [`Attempt`] each one reports if its
//! attempt ever returns, and small helpers for describing what the kernel said.
use serde::Serialize;

/// What a hostile plugin reports if its attempt returns: whether it got through, and how.
#[derive(Debug, Serialize)]
pub struct Attempt {
    /// Whether the attempt got through.
    pub escaped: bool,
    /// What happened.
    pub detail: String,
}

impl Attempt {
    /// An attempt that got through.
    pub fn escaped(detail: impl Into<String>) -> Attempt {
        Attempt {
            escaped: true,
            detail: detail.into(),
        }
    }

    /// An attempt that was stopped (or could not be made).
    pub fn stopped(detail: impl Into<String>) -> Attempt {
        Attempt {
            escaped: false,
            detail: detail.into(),
        }
    }
}

/// The text of the current `errno` (call it right after the failing call).
pub fn errno_text() -> String {
    std::io::Error::last_os_error().to_string()
}

/// The non-empty lines of `text`, trimmed: the paths a test passes in a story's text.
pub fn lines_as_paths(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
}

/// The pid named by `text` (trimmed) if it parses as one, else the parent's pid.
pub fn target_pid(text: &str) -> libc::pid_t {
    match text.trim().parse::<libc::pid_t>() {
        Ok(pid) => pid,
        // SAFETY: getppid has no preconditions and cannot fail.
        Err(_) => unsafe { libc::getppid() },
    }
}

/// `"ok"` if a libc call returned `rc >= 0`, else the errno text; read right after the call.
pub fn rc_text(rc: i64) -> String {
    if rc >= 0 {
        "ok".to_string()
    } else {
        errno_text()
    }
}

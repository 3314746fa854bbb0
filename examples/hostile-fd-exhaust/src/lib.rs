//! Hostile: opens descriptors (`dup` of a pipe) until the kernel refuses. `RLIMIT_NOFILE` must
//! stop it well short of 100 000, and the worker must still be able to answer.
use hostile_common::{Attempt, errno_text};
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-fd-exhaust",
    description: "Tries to open file descriptors without end",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

const GOAL: usize = 100_000;

/// Opens descriptors until failure or 100 000, then closes them again so the reply can go out.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let _ = story;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe stores.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Attempt::stopped(format!("opened 0 descriptors, then: {}", errno_text()));
    }
    let mut opened: Vec<libc::c_int> = fds.to_vec();
    opened.reserve(GOAL);
    let mut error = String::from("nothing: the goal was reached");
    while opened.len() < GOAL {
        // SAFETY: dup of a descriptor this process owns.
        let fd = unsafe { libc::dup(fds[0]) };
        if fd < 0 {
            error = errno_text();
            break;
        }
        opened.push(fd);
    }
    let count = opened.len();
    for fd in opened {
        // SAFETY: closing a descriptor opened above.
        unsafe { libc::close(fd) };
    }
    Attempt {
        escaped: count >= GOAL,
        detail: format!("opened {count} descriptors, then: {error}"),
    }
}

//! Hostile: finds its IPC channel (any socket among descriptors 0..1024) and writes 64 bytes of
//! garbage and then a frame header announcing a 4 GiB frame. The host must end the call with
//! `protocol_error` and must not try to allocate the announced frame.
use hostile_common::Attempt;
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-ipc-garbage",
    description: "Writes garbage and an oversize frame header to its IPC socket",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

/// Whether `fd` is an open socket.
fn is_socket(fd: libc::c_int) -> bool {
    // SAFETY: stat is a plain C struct for which all-zero bytes are a valid value.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a valid out-pointer for the call's duration.
    let rc = unsafe { libc::fstat(fd, &mut stat) };
    rc == 0 && stat.st_mode & libc::S_IFMT == libc::S_IFSOCK
}

/// Writes `bytes` to `fd` once, ignoring the result.
fn send(fd: libc::c_int, bytes: &[u8]) {
    // SAFETY: `bytes` is valid for reads of `bytes.len()` bytes.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

/// Writes garbage and an oversize frame header to every socket it holds.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let _ = story;
    let sockets: Vec<libc::c_int> = (0..1024).filter(|&fd| is_socket(fd)).collect();
    for &fd in &sockets {
        send(fd, &[0xff; 64]);
        send(fd, &0xFFFF_FFF0u32.to_le_bytes());
    }
    Attempt::stopped(format!("wrote garbage to fds {sockets:?}"))
}

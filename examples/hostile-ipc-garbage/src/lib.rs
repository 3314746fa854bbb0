//! Hostile: finds its IPC channel (any socket among descriptors 0..1024) and writes a bad frame
//! to it, then returns normally. The story's text picks the frame; the host must end the call
//! with `protocol_error` for each (and never allocate what a header claims):
//! - empty: 64 bytes of `0xff` and a frame header announcing a 4 GiB frame;
//! - `oversize`: only the 4 GiB header;
//! - `garbage`: a well-sized frame whose body does not decode;
//! - `wrong-id`: a well-formed result for call 99 (the first call is call 1);
//! - `bad-status`: a result for call 1 with status 9 (no such status);
//! - `shared-lie`: a result for call 1 claiming a shared-memory payload, without the descriptor;
//! - `bad-output`: a result for call 1 whose output is not the JSON it declares;
//! - `broker-wrong-call`: a broker request on behalf of call 99;
//! - `truncated`: a header announcing 100 bytes, 10 bytes, then the worker exits.
//!
//! The well-formed frames are hand-encoded postcard of the host's `FromWorker` enum
//! (variant 3 = `Broker { id, request }`, 4 = `Result { id, status, payload }`; payload variant
//! 0 = inline bytes, 1 = shared `{ len }`), so a test failure here can also mean the host's
//! message layout changed.
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

/// A frame: 4-byte little-endian length, then the body.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// The bytes for a mode.
fn bad_frame(mode: &str) -> Vec<u8> {
    match mode {
        "oversize" => 0xFFFF_FFF0u32.to_le_bytes().to_vec(),
        "garbage" => frame(&[0xff; 8]),
        "wrong-id" => frame(&[4, 99, 0, 0, 0]),
        "bad-status" => frame(&[4, 1, 9, 0, 0]),
        "shared-lie" => frame(&[4, 1, 0, 1, 10]),
        "bad-output" => {
            let mut body = vec![4, 1, 0, 0, 8];
            body.extend_from_slice(b"not json");
            frame(&body)
        }
        "broker-wrong-call" => frame(&[3, 99, 0]),
        "truncated" => {
            let mut out = 100u32.to_le_bytes().to_vec();
            out.extend_from_slice(&[0; 10]);
            out
        }
        _ => {
            let mut out = vec![0xff; 64];
            out.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
            out
        }
    }
}

/// Writes the bad frame the text names to every socket it holds.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let mode = story.text.trim();
    let sockets: Vec<libc::c_int> = (0..1024).filter(|&fd| is_socket(fd)).collect();
    for &fd in &sockets {
        send(fd, &bad_frame(mode));
    }
    if mode == "truncated" {
        // SAFETY: _exit ends the process at once; nothing is left to run.
        unsafe { libc::_exit(0) };
    }
    Attempt::stopped(format!("wrote a `{mode}` frame to fds {sockets:?}"))
}

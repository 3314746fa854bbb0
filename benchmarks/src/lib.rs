//! Shared by the benchmarks in `benches/`: the release artifacts they run, the stories they
//! feed, and the floors each figure is measured against in the same run (SPEC §13).
//!
//! A floor is the cheapest honest way to do the same job without the sandbox, written with raw
//! syscalls and no host-loader code:
//! - [`RawEcho`]: one framed round trip to another process over a socketpair (warm call);
//! - [`bare_cold_call`]: fork, `dlopen`, call, send the result back (cold start);
//! - [`InProcess`]: the entry point called directly in this process (the 146 stories);
//! - [`read_and_hash`]: read a file and SHA-256 it (inspection).
//!
//! Nothing here times anything; the benches do, with criterion. The sandboxed side goes through
//! [`start_worker`] and [`call_ok`], which panic on any outcome but `ok`, so a failed call is
//! never timed as if it were a result.

use abi_stable::std_types::RSlice;
use host_loader::{Plugin, Worker, WorkerOptions};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use plugin_sdk::abi::{EntryFn, STATUS_OK};
use sha2::{Digest, Sha256};
use std::ffi::{CStr, CString, c_void};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The hook every benchmark calls.
pub const HOOK: &str = "analyze";
/// The example plugin every benchmark runs.
pub const PLUGIN_FILE: &str = "libword_stats.so";
/// Lines in the stories file.
pub const STORY_COUNT: usize = 146;
/// Where the inspection benchmark looks for shared objects.
pub const SHARED_OBJECT_DIR: &str = "/usr/lib/x86_64-linux-gnu";
/// Length prefix of a frame, as in host-loader's IPC: 4 bytes, little-endian.
const HEADER_LEN: usize = 4;
/// Largest frame [`RawEcho`]'s child takes: its buffer is allocated before the fork.
pub const ECHO_MAX_FRAME: usize = 1 << 20;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benchmarks/ is inside the workspace")
        .to_path_buf()
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (a relative one is taken from the workspace
/// root), else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Where criterion writes its results, by criterion's own rule: `$CRITERION_HOME`, else
/// `<target>/criterion`.
pub fn criterion_dir() -> PathBuf {
    match std::env::var_os("CRITERION_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => target_dir().join("criterion"),
    }
}

/// Builds `plugin-worker`, `word-stats` and `lifecycle-probe` in release mode (once per process) and returns
/// `<target>/release`. The `bench` profile writes there too, so this fills the directory the
/// bench itself was built into.
pub fn release_artifacts() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(workspace_root())
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "-p",
                    "host-loader",
                    "-p",
                    "word-stats",
                    "-p",
                    "lifecycle-probe",
                ])
                .status()
                .expect("cannot run cargo to build the worker and the example plugin");
            assert!(status.success(), "release build failed: {status}");
            target_dir().join("release")
        })
        .clone()
}

/// The release `word-stats` plugin.
pub fn plugin_path() -> PathBuf {
    release_artifacts().join(PLUGIN_FILE)
}

/// The release `lifecycle-probe` plugin, whose `echo` hook does no work: the warm-call
/// benchmark measures the sandbox's round trip with it, not a plugin's work.
pub fn probe_path() -> PathBuf {
    release_artifacts().join("liblifecycle_probe.so")
}

/// Proportional set size of process `pid`, in KiB (`Pss` in `/proc/<pid>/smaps_rollup`).
pub fn pss_kb(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The stories file (`../shared/data/`, else `shared/data/` in the workspace).
pub fn stories_path() -> PathBuf {
    let root = workspace_root();
    let candidates = [
        root.join("../shared/data/aesop-for-children.jsonl"),
        root.join("shared/data/aesop-for-children.jsonl"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("stories not found; looked at {candidates:?}"))
}

/// Every story as the JSON bytes of its line: exactly what a call sends.
pub fn stories() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(stories_path()).expect("cannot read the stories");
    let stories: Vec<Vec<u8>> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.as_bytes().to_vec())
        .collect();
    assert_eq!(stories.len(), STORY_COUNT, "unexpected number of stories");
    stories
}

/// Opens (reads, inspects, seals) the plugin the way the CLI does.
pub fn open_plugin(path: &Path) -> Plugin {
    Plugin::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// Worker options as the CLI uses them, with the release worker executable.
pub fn worker_options(plugin: &Plugin) -> WorkerOptions {
    let mut options = WorkerOptions::new(plugin.limits(None));
    options.worker_exe = Some(release_artifacts().join("plugin-worker"));
    options
}

/// Starts a sandboxed worker for `plugin`; panics if it cannot be made ready.
pub fn start_worker(plugin: &Plugin) -> Worker {
    Worker::start(plugin, worker_options(plugin))
        .unwrap_or_else(|e| panic!("cannot start a worker: {e}"))
}

/// Calls the hook in `worker` and returns its output; panics on any outcome but `ok`.
pub fn call_ok(worker: &mut Worker, input: &[u8]) -> serde_json::Value {
    let result = worker.call(HOOK, input);
    match (result.status, result.output) {
        (host_loader::Outcome::Ok, Some(output)) => output,
        (status, _) => panic!(
            "sandboxed call ended {status}: {}",
            result.error.unwrap_or_default()
        ),
    }
}

/// Number of threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |dir| dir.count())
}

/// Resident memory of this process in bytes (`VmRSS`).
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

// ---------------------------------------------------------------------------------------------
// Raw I/O usable in a forked child: only read(2), write(2) and _exit(2), no allocation, no panic.

/// Reads exactly `buf.len()` bytes; `false` on end of file or error.
fn read_full(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..).filter(|rest| !rest.is_empty()) {
        // SAFETY: `rest` is a live, writable buffer of `rest.len()` bytes.
        let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        match n {
            1.. => done += n.unsigned_abs(),
            0 => return false,
            _ if Errno::last() == Errno::EINTR => {}
            _ => return false,
        }
    }
    true
}

/// Writes all of `buf`; `false` on error.
fn write_full(fd: RawFd, buf: &[u8]) -> bool {
    let mut done = 0;
    while let Some(rest) = buf.get(done..).filter(|rest| !rest.is_empty()) {
        // SAFETY: `rest` is a live buffer of `rest.len()` bytes.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        match n {
            1.. => done += n.unsigned_abs(),
            _ if n < 0 && Errno::last() == Errno::EINTR => {}
            _ => return false,
        }
    }
    true
}

/// Ends a forked child without running the parent's atexit handlers or destructors.
fn child_exit(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and touches no state of the parent's.
    unsafe { libc::_exit(code) }
}

// ---------------------------------------------------------------------------------------------
// Floor 1: a raw framed round trip between two processes.

/// A child process that echoes frames (4-byte little-endian length, then the bytes) over a
/// `socketpair(AF_UNIX, SOCK_STREAM)`: the floor of a warm call. Dropping it kills and reaps
/// the child.
#[derive(Debug)]
pub struct RawEcho {
    stream: UnixStream,
    child: Pid,
    frame: Vec<u8>,
    reply: Vec<u8>,
}

impl RawEcho {
    /// Forks the echo child. The child only calls read, write and _exit on a buffer allocated
    /// before the fork, so this is sound even when the process has other threads.
    pub fn spawn() -> RawEcho {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let mut buffer = vec![0u8; HEADER_LEN + ECHO_MAX_FRAME];
        // SAFETY: the child runs only `echo_child`: async-signal-safe calls on memory that
        // exists before the fork, then _exit. No lock another thread might hold is taken.
        let forked = unsafe { fork() }.expect("fork");
        match forked {
            ForkResult::Child => echo_child(ours.as_raw_fd(), theirs.as_raw_fd(), &mut buffer),
            ForkResult::Parent { child } => {
                drop(theirs);
                RawEcho {
                    stream: UnixStream::from(ours),
                    child,
                    frame: Vec::new(),
                    reply: Vec::new(),
                }
            }
        }
    }

    /// Sends `msg` as one frame (one write, as the host does) and returns the echoed frame.
    pub fn round_trip(&mut self, msg: &[u8]) -> &[u8] {
        assert!(
            msg.len() <= ECHO_MAX_FRAME,
            "message larger than the echo buffer"
        );
        let len = u32::try_from(msg.len()).expect("message length fits a frame header");
        self.frame.clear();
        self.frame.extend_from_slice(&len.to_le_bytes());
        self.frame.extend_from_slice(msg);
        self.stream.write_all(&self.frame).expect("echo write");
        let mut header = [0u8; HEADER_LEN];
        self.stream.read_exact(&mut header).expect("echo read");
        let back = u32::from_le_bytes(header) as usize;
        self.reply.resize(back, 0);
        self.stream.read_exact(&mut self.reply).expect("echo read");
        &self.reply
    }
}

impl Drop for RawEcho {
    fn drop(&mut self) {
        let _ = kill(self.child, Signal::SIGKILL);
        let _ = waitpid(self.child, None);
    }
}

/// The echo child's loop: read a whole frame, write it back; exit when the parent is gone.
fn echo_child(parent_end: RawFd, fd: RawFd, buffer: &mut [u8]) -> ! {
    // Our copy of the parent's end would keep the socket open after the parent died.
    // SAFETY: closing a descriptor this process owns; nothing else uses it in the child.
    unsafe { libc::close(parent_end) };
    loop {
        let Some(header) = buffer.get_mut(..HEADER_LEN) else {
            child_exit(2)
        };
        if !read_full(fd, header) {
            child_exit(0);
        }
        let Ok(header) = <[u8; HEADER_LEN]>::try_from(&*header) else {
            child_exit(2)
        };
        let end = HEADER_LEN + u32::from_le_bytes(header) as usize;
        let Some(body) = buffer.get_mut(HEADER_LEN..end) else {
            child_exit(2)
        };
        if !read_full(fd, body) {
            child_exit(1);
        }
        let Some(frame) = buffer.get(..end) else {
            child_exit(2)
        };
        if !write_full(fd, frame) {
            child_exit(1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Floor 2: fork + dlopen + call, nothing else.

/// Forks; the child `dlopen`s `plugin` (`RTLD_NOW | RTLD_LOCAL`), calls its `analyze` entry
/// point with `input`, writes the status byte and payload to a pipe and `_exit`s. Returns the
/// payload; panics unless the call returned `ok` and the child exited 0.
///
/// This is the floor of a cold start, and deliberately the unsafe-but-cheap way the sandbox
/// avoids: `dlopen` (and the plugin's allocations) after `fork` are not async-signal-safe if
/// another thread held a loader or allocator lock at the fork. Run it while the process is
/// single-threaded (the cold-start group runs it before any worker starts a thread); there is
/// no confinement, no inspection, no exec and no watchdog.
pub fn bare_cold_call(plugin: &Path, input: &[u8]) -> Vec<u8> {
    let path = CString::new(plugin.as_os_str().as_bytes()).expect("plugin path has no NUL");
    let symbol = CString::new(plugin_sdk::manifest::hook_symbol(HOOK)).expect("symbol has no NUL");
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    // SAFETY: the child runs only `cold_child` and then _exit; see this function's docs for
    // the loader/allocator caveat this floor accepts on purpose.
    let forked = unsafe { fork() }.expect("fork");
    match forked {
        ForkResult::Child => cold_child(&path, &symbol, input, write_end),
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut answer = Vec::new();
            let read = std::fs::File::from(read_end).read_to_end(&mut answer);
            let status = waitpid(child, None).expect("waitpid");
            read.expect("reading the child's answer");
            assert_eq!(
                status,
                WaitStatus::Exited(child, 0),
                "bare cold call child failed"
            );
            match answer.split_first() {
                Some((&STATUS_OK, payload)) => payload.to_vec(),
                Some((status, payload)) => panic!(
                    "bare cold call returned status {status}: {}",
                    String::from_utf8_lossy(payload)
                ),
                None => panic!("bare cold call sent nothing"),
            }
        }
    }
}

fn cold_child(path: &CStr, symbol: &CStr, input: &[u8], out: OwnedFd) -> ! {
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        child_exit(3);
    }
    // SAFETY: `handle` came from a successful dlopen; `symbol` is NUL-terminated.
    let address = unsafe { libc::dlsym(handle, symbol.as_ptr()) };
    if address.is_null() {
        child_exit(4);
    }
    // SAFETY: plugin-sdk's `#[hook]` exports every `__plugin_hook_*` symbol with the `EntryFn`
    // signature. The sandbox checks that through the manifest; this floor trusts it.
    let entry = unsafe { std::mem::transmute::<*mut c_void, EntryFn>(address) };
    let outcome = entry(RSlice::from_slice(input));
    let fd = out.as_raw_fd();
    let sent = write_full(fd, &[outcome.status]) && write_full(fd, outcome.payload.as_slice());
    child_exit(if sent { 0 } else { 5 })
}

// ---------------------------------------------------------------------------------------------
// Floor 3: the entry point called in this process.

/// The plugin `dlopen`ed into this process, its `analyze` entry point called directly: no
/// isolation at all. The floor of the 146-stories benchmark. The library stays loaded until
/// the process exits (unloading Rust code with thread-local destructors is not worth the risk).
#[derive(Debug)]
pub struct InProcess {
    entry: EntryFn,
}

impl InProcess {
    /// Loads `plugin` (`RTLD_NOW | RTLD_LOCAL`) and resolves its `analyze` entry point.
    pub fn open(plugin: &Path) -> InProcess {
        let path = CString::new(plugin.as_os_str().as_bytes()).expect("plugin path has no NUL");
        let symbol =
            CString::new(plugin_sdk::manifest::hook_symbol(HOOK)).expect("symbol has no NUL");
        // SAFETY: `path` is NUL-terminated and outlives the call. Loading runs the plugin's
        // constructors in this process: this floor is "no isolation" on purpose, and only ever
        // loads the trusted example plugin.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(
            !handle.is_null(),
            "dlopen {}: {}",
            plugin.display(),
            dl_error()
        );
        // SAFETY: `handle` came from a successful dlopen; `symbol` is NUL-terminated.
        let address = unsafe { libc::dlsym(handle, symbol.as_ptr()) };
        assert!(!address.is_null(), "dlsym {symbol:?}: {}", dl_error());
        // SAFETY: plugin-sdk's `#[hook]` exports every `__plugin_hook_*` symbol with the
        // `EntryFn` signature; the library is never unloaded, so the pointer stays valid.
        let entry = unsafe { std::mem::transmute::<*mut c_void, EntryFn>(address) };
        InProcess { entry }
    }

    /// Calls `analyze` with `input` (a story's JSON) and decodes the output JSON, as the host
    /// does for a sandboxed call; panics unless the call returned `ok`.
    pub fn call(&self, input: &[u8]) -> serde_json::Value {
        let outcome = (self.entry)(RSlice::from_slice(input));
        assert_eq!(
            outcome.status,
            STATUS_OK,
            "in-process call failed: {}",
            String::from_utf8_lossy(outcome.payload.as_slice())
        );
        serde_json::from_slice(outcome.payload.as_slice()).expect("the output is JSON")
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror takes no arguments; it returns null or a NUL-terminated message.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        return "unknown error".to_string();
    }
    // SAFETY: non-null, so it points at dlerror's NUL-terminated message, valid until the next
    // dl* call on this thread.
    unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------------------------
// Floor 4: read and hash.

/// Reads `path` and hashes it with SHA-256: the floor of inspecting it. Returns the size.
pub fn read_and_hash(path: &Path) -> (usize, [u8; 32]) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (bytes.len(), Sha256::digest(&bytes).into())
}

/// Every regular file (symlinks skipped, so no file counts twice) directly in
/// [`SHARED_OBJECT_DIR`] whose name contains `.so`, sorted.
pub fn shared_objects() -> Vec<PathBuf> {
    let dir =
        std::fs::read_dir(SHARED_OBJECT_DIR).unwrap_or_else(|e| panic!("{SHARED_OBJECT_DIR}: {e}"));
    let mut files: Vec<PathBuf> = dir
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter(|entry| entry.file_name().as_bytes().windows(3).any(|w| w == b".so"))
        .map(|entry| entry.path())
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_echo_returns_each_frame() {
        let mut echo = RawEcho::spawn();
        for msg in [&b""[..], b"x", &[7u8; 100_000]] {
            assert_eq!(echo.round_trip(msg), msg);
        }
    }

    #[test]
    fn stories_are_json_lines() {
        for story in stories() {
            let value: serde_json::Value = serde_json::from_slice(&story).expect("JSON");
            assert!(value.get("text").is_some_and(|t| t.is_string()));
        }
    }
}

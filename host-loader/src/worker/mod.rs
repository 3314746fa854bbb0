//! Workers: the child processes plugins run in, and the parent-side watchdog.
//!
//! [`Worker::start`] spawns the `plugin-worker` executable ([`spawn`]), optionally puts it in
//! a memory cgroup, passes it the sealed plugin bytes and a [`LoadRequest`], and waits for it to
//! confine itself and load the plugin, then runs the plugin's `init` entry point if it has one.
//! [`Worker::call`] sends one request and watches the worker until it answers, dies, or overruns
//! its wall-clock or CPU allowance; the answer is always exactly one [`CallResult`].
//! [`Worker::call_many`] streams many inputs with several requests in flight (the worker
//! answers them in order, one at a time), so a stream is bounded by the plugin's work rather
//! than by round trips. Large inputs and outputs travel through sealed memfds
//! ([`crate::ipc::shared`]).
//!
//! In a stream, call *k* is timed from when its request was sent or call *k-1* was answered,
//! whichever is later (that is when the worker can start it), and its CPU time is the worker's
//! CPU time between the two answers.
//!
//! Classification of a worker that died during a call, in order:
//! 1. the watchdog killed it: `timeout` (wall clock) or `cpu_limit` (CPU clock);
//! 2. its memory cgroup recorded an OOM kill: `memory_limit`;
//! 3. it died of `SIGPROF` (the in-process per-call CPU timer, see `sandbox::limits`):
//!    `cpu_limit`;
//! 4. without a cgroup only: it aborted after the Rust allocator reported an allocation failure
//!    under `RLIMIT_AS`: `memory_limit` (the message comes from the worker's stderr, so a
//!    plugin could fake it; it can only mislabel its own crash);
//! 5. any other death: `crashed`, with the signal or exit status.
//!
//! A worker whose call did not end `ok` is retired ([`Outcome::keeps_worker`]): no call ever sees
//! state left behind by a failed one. Requests that were in flight behind the failed call are
//! not answered; [`Worker::call_many`] says how many inputs were done so the caller can send the
//! rest to a fresh worker. A healthy worker that is retired (dropped) first runs the plugin's
//! `shutdown` entry point, if any, under [`WorkerOptions::shutdown_ms`].

mod capture;
pub mod child;
mod confinement;
mod json_size;
pub mod launcher;
mod measure;
pub mod spawn;

use crate::broker::{Broker, BrokerConfig, Handled, OpLimitAction};
use crate::ipc::frame::{self, FrameError, FrameReader, Outbox};
use crate::ipc::message::{self, FromWorker, LoadRequest, Payload, ToWorker};
use crate::ipc::shared::{self, SHARED_THRESHOLD, SharedBytes};
use crate::outcome::{CallResult, Outcome, Usage};
use crate::plugin::Plugin;
use crate::sandbox::Layer;
use crate::sandbox::cgroup::{MemoryCgroup, PidsCgroup};
use crate::sandbox::process::exit_code_for_signal;
use confinement::TempDir;
use measure::{Exit, PeakRss, Reaped};
use plugin_manifest::signature::WireKind;
use plugin_manifest::{INIT_HOOK, Limits, SDK_ABI_VERSION, SHUTDOWN_HOOK, SecurityLevel};
use plugin_sdk::abi::{MIN_SUPPORTED_ABI_VERSION, STATUS_OK, STATUS_PANIC, STATUS_PLUGIN_ERROR};
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

pub use capture::CAPTURE_LIMIT;

/// Finishes what retiring workers left to background threads: waits (at most `timeout` for
/// each step) until workers retired without waiting are reaped and their temporary directories
/// and cgroups, and the spare cgroups, are removed. Those threads die with the process, so a
/// program calls this before it exits (after dropping its pools, which wait for their own
/// workers) to leave nothing behind. Returns whether everything finished in time.
pub fn finish_background_work(timeout: Duration) -> bool {
    let reaped = measure::finish_background_reaping(timeout);
    // After the reaper, whose last steps ask the keeper to remove cgroups.
    let removed = crate::sandbox::cgroup::finish_background_work(timeout);
    reaped && removed
}
/// How often the watchdog samples CPU time during a long call.
const CPU_SAMPLE_INTERVAL: Duration = Duration::from_millis(20);
/// Default [`WorkerOptions::max_tasks`]: ample for a plugin's thread pool, far below what
/// would strain the machine's process table.
pub const DEFAULT_MAX_TASKS: u64 = 256;

/// Extra address space allowed on top of the memory limit when a cgroup enforces memory:
/// `RLIMIT_AS` counts reservations (thread stacks, allocator arenas), not memory used.
const ADDRESS_SPACE_BACKSTOP_SLACK: u64 = 1024 * 1024 * 1024;

/// How a worker is started.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The effective limits.
    pub limits: Limits,
    /// Largest frame accepted from the worker. By default [`frame::DEFAULT_MAX_FRAME`].
    pub max_frame: usize,
    /// The worker executable. By default found by [`spawn::find_worker_exe`].
    pub worker_exe: Option<PathBuf>,
    /// Enforce memory, and the task limit, with cgroups when the machine offers them. By
    /// default `true`.
    pub use_cgroup: bool,
    /// Most threads and processes the worker may have at once, itself included (the pids
    /// cgroup, where the machine has one: layer `cgroup-pids`). By default
    /// [`DEFAULT_MAX_TASKS`].
    pub max_tasks: u64,
    /// The plugin's data directory: relative `fs.read`/`fs.write` scopes are resolved against
    /// it. By default the host's working directory. (The worker's own working directory is
    /// always its private temporary directory.)
    pub data_dir: Option<PathBuf>,
    /// The security level whose required layers the worker must have. By default the plugin's
    /// declared level.
    pub level: Option<SecurityLevel>,
    /// Absolute directories the policy lets `fs.*` scopes name (the broker resolves such
    /// paths beneath them). By default none.
    pub allowed_fs_roots: Vec<PathBuf>,
    /// What a call past one of its operation counts gets. By default it ends, `violation`.
    pub on_op_limit: OpLimitAction,
    /// Layers not to apply, as if this machine lacked them (for tests of the refusal, and for
    /// measuring each layer's cost). Names as in [`crate::sandbox::Layer`].
    pub leave_out: Vec<String>,
    /// How the worker process is created. By default forked from the launcher.
    pub launch: LaunchMode,
    /// The configuration passed to the plugin's `init` entry point (as JSON). By default `{}`.
    pub config: serde_json::Value,
    /// Deadline for the plugin's `shutdown` entry point, in milliseconds. By default 250.
    pub shutdown_ms: u64,
}

/// How a worker process is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LaunchMode {
    /// Forked from the launcher (fork server, [`launcher`]): launch cost does not depend on the
    /// host's size or threads, and no `exec` per worker.
    #[default]
    Launcher,
    /// A fresh `plugin-worker` process per worker (`posix_spawn` + `exec` from the spawner
    /// thread). Slower; kept as the reference point in the benchmarks.
    Exec,
}

impl WorkerOptions {
    /// Defaults with the given limits.
    pub fn new(limits: Limits) -> WorkerOptions {
        WorkerOptions {
            limits,
            max_frame: frame::DEFAULT_MAX_FRAME,
            worker_exe: None,
            use_cgroup: true,
            max_tasks: DEFAULT_MAX_TASKS,
            data_dir: None,
            level: None,
            allowed_fs_roots: Vec::new(),
            on_op_limit: OpLimitAction::default(),
            leave_out: Vec::new(),
            launch: LaunchMode::default(),
            config: serde_json::json!({}),
            shutdown_ms: 250,
        }
    }

    /// The options a policy decision calls for: its limits and level, the policy's allowed
    /// filesystem roots and what a call past its operation counts gets.
    pub fn for_decision(
        decision: &crate::policy::engine::Decision,
        policy: &crate::policy::Policy,
    ) -> WorkerOptions {
        let mut options = WorkerOptions::new(decision.limits);
        options.level = Some(decision.level);
        options
            .allowed_fs_roots
            .clone_from(&policy.allowed_fs_roots);
        options.on_op_limit = policy.on_op_limit(&decision.plugin);
        options
    }
}

/// Why a worker could not be made ready.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The host could not start the worker process at all (not the plugin's fault).
    #[error("cannot start the worker: {0}")]
    Launch(#[from] std::io::Error),
    /// The worker started, but confining it or loading the plugin failed; the result says how.
    #[error("plugin could not be loaded ({}): {}", .0.status, .0.error.as_deref().unwrap_or(""))]
    Load(Box<CallResult>),
    /// The plugin loaded, but its `init` entry point did not end `ok`; the result says why.
    #[error("plugin init failed ({}): {}", .0.status, .0.error.as_deref().unwrap_or(""))]
    Init(Box<CallResult>),
}

impl SpawnError {
    /// The failure as the result of the call that could not be made.
    pub fn into_result(self) -> CallResult {
        match self {
            SpawnError::Launch(e) => CallResult::failed(
                Outcome::Crashed,
                format!("cannot start the worker: {e}"),
                Usage::default(),
            ),
            SpawnError::Load(result) | SpawnError::Init(result) => *result,
        }
    }
}

/// Why waiting for a message stopped.
enum Interrupt {
    Deadline,
    Cpu,
    Exited,
    Protocol(String),
    /// The seccomp listener reported a denied system call (named from the kernel's number).
    Syscall(String),
    /// The broker ended the call (a count was exceeded, or too many denied requests).
    Broker,
}

/// A running worker with its plugin loaded.
#[derive(Debug)]
pub struct Worker {
    pid: i32,
    pidfd: OwnedFd,
    socket: UnixStream,
    reader: FrameReader,
    options: WorkerOptions,
    /// Input and output wire kinds of every callable entry point.
    entries: HashMap<String, (WireKind, WireKind)>,
    cgroup: Option<MemoryCgroup>,
    tasks_cgroup: Option<PidsCgroup>,
    captured: Arc<capture::Capture>,
    layers: Vec<String>,
    /// The kernel's Landlock ABI, when the worker applied Landlock.
    landlock_abi: Option<u32>,
    /// The seccomp filter's user-notification listener: denied system calls arrive here.
    listener: Option<OwnedFd>,
    /// The private temporary directory, removed after the worker.
    temp_dir: Option<TempDir>,
    /// Serves the plugin's requests for host services, and counts them per call.
    broker: Broker,
    next_id: u64,
    reaped: Option<Reaped>,
    peak_rss: PeakRss,
    cpu_clock: Option<libc::clockid_t>,
    /// The worker's CPU time when its last answer arrived, and whether the peak RSS counter
    /// has been reset since: a worker waiting for work uses neither, so the next call starts
    /// from there without two more system calls.
    idle_since: Option<u64>,
}

/// A request sent and not yet answered.
#[derive(Debug)]
struct InFlight {
    index: usize,
    id: u64,
    sent: Instant,
}

impl Worker {
    /// Starts a worker for `plugin` and waits until the plugin is loaded (bounded by the
    /// plugin's wall-clock limit: a constructor that never returns is a `timeout`).
    pub fn start(plugin: &Plugin, options: WorkerOptions) -> Result<Worker, SpawnError> {
        // The library checks the level's rules itself, whether or not the host application
        // ran the policy engine: a grant the level does not allow is never opened.
        let level = options
            .level
            .unwrap_or(plugin.manifest().info.security_level)
            .max(plugin.manifest().info.security_level);
        let refused: Vec<String> = plugin
            .manifest()
            .info
            .permissions
            .iter()
            .filter_map(|grant| level.refusal(grant))
            .collect();
        if !refused.is_empty() {
            return Err(SpawnError::Load(Box::new(CallResult::failed(
                Outcome::Denied,
                refused.join("; "),
                Usage::default(),
            ))));
        }
        let exe = match &options.worker_exe {
            Some(exe) => exe.clone(),
            None => spawn::find_worker_exe()?,
        };
        let (host_end, worker_end) = UnixStream::pair()?;
        let (capture_read, capture_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
        let worker_end = OwnedFd::from(worker_end);
        let pid = match options.launch {
            LaunchMode::Launcher => {
                let launched = launcher::for_exe(&exe).launch(&worker_end, &capture_write);
                drop(worker_end);
                drop(capture_write);
                launched?
            }
            LaunchMode::Exec => spawn_exec(&exe, worker_end, capture_write)?,
        };
        // Only the worker holds the write end of the capture pipe now, so the capture thread
        // ends when the worker (and anything it left behind) does.
        let pidfd = measure::pidfd_open(pid)?;

        let captured = match capture::Capture::start(capture_read) {
            Ok(captured) => captured,
            Err(e) => {
                measure::kill_tree(&pidfd, pid);
                let _ = measure::reap(pid);
                return Err(e.into());
            }
        };

        let limits = options.limits;
        let temp_dir = TempDir::create().map_err(|e| {
            measure::kill_tree(&pidfd, pid);
            let _ = measure::reap(pid);
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot make the worker's private temporary directory in {}: {e} \
                     (point TMPDIR at a writable directory)",
                    std::env::temp_dir().display()
                ),
            )
        })?;
        let confinement = confinement::plan(plugin, &options, &temp_dir);
        let mut layers = vec![
            Layer::SESSION.to_string(),
            Layer::PARENT_DEATH.to_string(),
            Layer::FD_CLOSING.to_string(),
            Layer::SIGNAL_RESET.to_string(),
        ];
        let mut cgroup = None;
        if options.use_cgroup && MemoryCgroup::available().is_some() {
            // A cgroup that cannot be set up is reported by its absence from the layers; the
            // rlimit then carries the memory limit alone.
            if let Ok(group) = MemoryCgroup::create(limits.memory_bytes)
                && group.add(pid).is_ok()
            {
                cgroup = Some(group);
            }
        }
        let mut tasks_cgroup = None;
        if options.use_cgroup && PidsCgroup::available() {
            // Likewise reported by its absence: threads stay bounded by the address space.
            if let Ok(group) = PidsCgroup::create(options.max_tasks.max(1))
                && group.add(pid).is_ok()
            {
                tasks_cgroup = Some(group);
            }
        }
        let address_space_bytes = match cgroup {
            Some(_) => limits
                .memory_bytes
                .saturating_mul(4)
                .saturating_add(ADDRESS_SPACE_BACKSTOP_SLACK),
            None => limits.memory_bytes,
        };
        host_end.set_nonblocking(true)?;
        let hooks = plugin.callable_hooks();
        let entries = plugin
            .manifest()
            .entry_points
            .iter()
            .filter(|e| hooks.contains(&e.hook))
            .map(|e| {
                (
                    e.hook.clone(),
                    (e.signature.input.kind, e.signature.output.kind),
                )
            })
            .collect();
        let broker = Broker::new(BrokerConfig {
            grants: plugin.manifest().info.permissions.clone(),
            limits,
            level,
            data_dir: confinement::data_dir(&options),
            allowed_fs_roots: options.allowed_fs_roots.clone(),
            on_op_limit: options.on_op_limit,
        });
        let mut worker = Worker {
            pid,
            pidfd,
            socket: host_end,
            broker,
            reader: FrameReader::new(options.max_frame),
            options,
            entries,
            cgroup,
            tasks_cgroup,
            captured,
            layers: Vec::new(),
            landlock_abi: None,
            listener: None,
            temp_dir: Some(temp_dir),
            next_id: 1,
            reaped: None,
            peak_rss: PeakRss::open(pid),
            cpu_clock: measure::cpu_clock(pid),
            idle_since: None,
        };
        let started = Instant::now();
        let deadline = started + Duration::from_millis(limits.wall_ms);
        let request = ToWorker::Load(LoadRequest {
            limits,
            address_space_bytes,
            hooks,
            abi_versions: (MIN_SUPPORTED_ABI_VERSION, SDK_ABI_VERSION),
            confinement,
        });
        let sent = crate::ipc::fd::send_fd(&worker.socket, plugin.memfd().as_raw_fd())
            .map_err(FrameError::from)
            .and_then(|()| worker.send(&request, deadline));
        if let Err(e) = sent {
            return Err(SpawnError::Load(Box::new(worker.fail_load(
                Interrupt::Protocol(format!("sending the plugin: {e}")),
                started,
            ))));
        }
        let missing = match worker.next_message(deadline, None) {
            Ok(FromWorker::Confined {
                layers: reported,
                landlock_abi,
                missing,
            }) => {
                if reported.iter().any(|layer| layer == Layer::SECCOMP) {
                    worker.listener = worker.reader.take_fd();
                    if worker.listener.is_none() {
                        return Err(SpawnError::Load(Box::new(worker.fail_load(
                            Interrupt::Protocol(
                                "seccomp reported without its listener".to_string(),
                            ),
                            started,
                        ))));
                    }
                }
                layers.extend(reported);
                worker.landlock_abi = landlock_abi;
                missing
            }
            Ok(FromWorker::LoadFailed { stage, message }) => {
                // Confinement itself failed (before any plugin byte ran): refuse, with why.
                let usage = worker.usage_after_death(started, 0);
                let mut result = CallResult::failed(
                    Outcome::Denied,
                    format!("the worker could not confine itself: step `{stage}`: {message}"),
                    usage,
                );
                worker.stamp(&mut result);
                return Err(SpawnError::Load(Box::new(result)));
            }
            Ok(other) => {
                return Err(SpawnError::Load(Box::new(worker.fail_load(
                    Interrupt::Protocol(format!("expected Confined, got {}", name_of(&other))),
                    started,
                ))));
            }
            Err(interrupt) => {
                return Err(SpawnError::Load(Box::new(
                    worker.fail_load(interrupt, started),
                )));
            }
        };
        layers.push(Layer::WATCHDOG.to_string());
        if worker.cgroup.is_some() {
            layers.push(Layer::CGROUP_MEMORY.to_string());
        }
        if worker.tasks_cgroup.is_some() {
            layers.push(Layer::CGROUP_PIDS.to_string());
        }
        worker.layers = layers;
        let mut missing = missing;
        for layer in &worker.options.leave_out {
            missing.push((
                layer.clone(),
                "left out by WorkerOptions::leave_out".to_string(),
            ));
        }
        if let Some(refusal) = confinement::refusal(level, &worker.layers, &missing) {
            // The worker is waiting for the go-ahead: it dies here without loading anything.
            let usage = worker.usage_after_death(started, 0);
            let mut result = CallResult::failed(Outcome::Denied, refusal, usage);
            worker.stamp(&mut result);
            return Err(SpawnError::Load(Box::new(result)));
        }
        if let Err(e) = worker.send(&ToWorker::Proceed, deadline) {
            return Err(SpawnError::Load(Box::new(worker.fail_load(
                Interrupt::Protocol(format!("sending the go-ahead: {e}")),
                started,
            ))));
        }
        match worker.next_message(deadline, None) {
            Ok(FromWorker::Ready) => worker.init(),
            Ok(FromWorker::LoadFailed { stage, message }) => {
                let usage = worker.usage_after_death(started, 0);
                Err(SpawnError::Load(Box::new(CallResult::failed(
                    Outcome::Denied,
                    format!("worker refused the plugin at {stage}: {message}"),
                    usage,
                ))))
            }
            Ok(other) => Err(SpawnError::Load(Box::new(worker.fail_load(
                Interrupt::Protocol(format!("expected Ready, got {}", name_of(&other))),
                started,
            )))),
            Err(interrupt) => Err(SpawnError::Load(Box::new(
                worker.fail_load(interrupt, started),
            ))),
        }
    }

    /// The worker's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }
    /// The worker's private temporary directory on the host's side (removed after it).
    pub fn temp_dir(&self) -> Option<&std::path::Path> {
        self.temp_dir.as_ref().map(|dir| dir.path())
    }

    /// The enforcement layers active in this worker.
    pub fn layers(&self) -> &[String] {
        &self.layers
    }

    /// Whether the worker can take another call.
    pub fn is_alive(&self) -> bool {
        self.reaped.is_none()
    }

    /// Everything the worker wrote to stdout/stderr so far (the last [`CAPTURE_LIMIT`] bytes).
    pub fn captured_output(&self) -> String {
        self.captured.text()
    }

    fn send(&mut self, message: &ToWorker, deadline: Instant) -> Result<(), FrameError> {
        frame::write_frame_before(
            &mut self.socket,
            &message::encode(message),
            self.options.max_frame,
            deadline,
        )
    }

    /// Runs the plugin's `init` entry point, if it has one, with the configured configuration.
    fn init(mut self) -> Result<Worker, SpawnError> {
        let Some((input_kind, _)) = self.entries.get(INIT_HOOK).copied() else {
            return Ok(self);
        };
        let input = match input_kind {
            WireKind::None => Vec::new(),
            _ => self.options.config.to_string().into_bytes(),
        };
        let mut result = None;
        self.stream(INIT_HOOK, &[&input], 1, &mut |_, r| result = Some(r));
        match result {
            Some(result) if result.status == Outcome::Ok => Ok(self),
            Some(mut result) => {
                result.error = Some(format!(
                    "init failed: {}",
                    result.error.as_deref().unwrap_or("no reason given")
                ));
                Err(SpawnError::Init(Box::new(result)))
            }
            None => Err(SpawnError::Init(Box::new(CallResult::failed(
                Outcome::ProtocolError,
                "init failed: no result",
                Usage::default(),
            )))),
        }
    }

    /// Calls `hook` with `input`. Never panics and never blocks past the call's deadline; on any
    /// outcome that retires the worker, the worker is killed and reaped before this returns.
    pub fn call(&mut self, hook: &str, input: &[u8]) -> CallResult {
        let mut result = None;
        self.call_many(hook, &[input], 1, |_, r| result = Some(r));
        result.unwrap_or_else(|| {
            CallResult::failed(
                Outcome::Crashed,
                "the worker is no longer running",
                Usage::default(),
            )
        })
    }

    /// Calls `hook` once per input, in order, with up to `window` requests in flight, and hands
    /// each result to `sink` with the input's index. Returns how many inputs got a result: all
    /// of them, unless a call did not end `ok`; then that call's result was the last one, the
    /// worker is retired, and `inputs[done..]` were not run (retry them on a fresh worker).
    pub fn call_many(
        &mut self,
        hook: &str,
        inputs: &[&[u8]],
        window: usize,
        mut sink: impl FnMut(usize, CallResult),
    ) -> usize {
        if plugin_manifest::is_lifecycle_hook(hook) {
            for index in 0..inputs.len() {
                sink(
                    index,
                    CallResult::failed(
                        Outcome::Denied,
                        format!("`{hook}` is a lifecycle entry point, run by the host itself"),
                        Usage::default(),
                    ),
                );
            }
            return inputs.len();
        }
        self.stream(hook, inputs, window, &mut sink)
    }

    fn stream(
        &mut self,
        hook: &str,
        inputs: &[&[u8]],
        window: usize,
        sink: &mut dyn FnMut(usize, CallResult),
    ) -> usize {
        if self.reaped.is_some() {
            return 0;
        }
        let Some((_, output_kind)) = self.entries.get(hook).copied() else {
            for index in 0..inputs.len() {
                sink(
                    index,
                    CallResult::failed(
                        Outcome::Denied,
                        format!("the plugin has no callable entry point `{hook}`"),
                        Usage::default(),
                    ),
                );
            }
            return inputs.len();
        };
        let limits = self.options.limits;
        let wall = Duration::from_millis(limits.wall_ms);
        let cpu_allowance = limits.cpu_ms.saturating_mul(1_000_000);
        let max_frame = self.options.max_frame;
        let window = window.max(1);
        let mut inflight: VecDeque<InFlight> = VecDeque::new();
        let mut outbox = Outbox::default();
        let mut next = 0;
        let mut done = 0;
        // When the worker could start the oldest request: when the previous one was answered.
        let mut last_answer = Instant::now();
        let mut cpu_mark = match self.idle_since.take() {
            Some(cpu) => cpu,
            None => {
                self.peak_rss.reset();
                measure::cpu_ns(self.cpu_clock).unwrap_or(0)
            }
        };
        loop {
            // Queue requests up to the window.
            while inflight.len() < window
                && let Some(input) = inputs.get(next).copied()
            {
                if input.len() > max_frame {
                    // Refused without running; its result must still come in order.
                    if !inflight.is_empty() {
                        break;
                    }
                    sink(
                        next,
                        CallResult::failed(
                            Outcome::Denied,
                            format!(
                                "input of {} bytes is larger than the {max_frame}-byte limit \
                                 of one call's input; the call was not made",
                                input.len()
                            ),
                            Usage::default(),
                        ),
                    );
                    next += 1;
                    done += 1;
                    continue;
                }
                let (payload, fd) = outgoing_payload(input);
                let id = self.next_id;
                self.next_id += 1;
                let request = ToWorker::Call {
                    id,
                    hook: hook.to_string(),
                    input: payload,
                };
                // A small request always fits: the payload is inline only below the threshold.
                let _ = outbox.push(&message::encode(&request), max_frame + 1024, fd);
                inflight.push_back(InFlight {
                    index: next,
                    id,
                    sent: Instant::now(),
                });
                next += 1;
            }
            let Some(head) = inflight.front() else {
                // Everything answered: the worker idles from the last answer's state.
                if done > 0 && self.reaped.is_none() {
                    self.idle_since = Some(cpu_mark);
                }
                return done;
            };
            let (head_index, head_id) = (head.index, head.id);
            let started = head.sent.max(last_answer);
            if outbox.flush(&self.socket).is_err() {
                let result = self.finish(Interrupt::Exited, started, cpu_mark);
                sink(head_index, result);
                return done + 1;
            }
            // Answers already buffered.
            match self.reader.take_frame() {
                Ok(Some(frame)) => {
                    let now = Instant::now();
                    let result = match self.answer(&frame, head_id, output_kind) {
                        Ok(Answer::Broker(request)) => {
                            match self.broker.handle(&request, started + wall) {
                                Handled::Reply(reply) => {
                                    let reply = ToWorker::BrokerReply { id: head_id, reply };
                                    // The broker keeps replies below the frame limit.
                                    let _ = outbox.push(
                                        &message::encode(&reply),
                                        max_frame + 1024,
                                        None,
                                    );
                                    continue;
                                }
                                Handled::EndCall => {
                                    self.finish(Interrupt::Broker, started, cpu_mark)
                                }
                            }
                        }
                        Ok(Answer::Result(status, payload)) => {
                            let cpu_now = measure::cpu_ns(self.cpu_clock).unwrap_or(cpu_mark);
                            let usage = Usage {
                                cpu_ms: cpu_now.saturating_sub(cpu_mark) / 1_000_000,
                                wall_ms: now.duration_since(started).as_millis() as u64,
                                peak_rss_kb: self.peak_rss.read_kb().unwrap_or(0),
                                ..Usage::default()
                            };
                            self.peak_rss.reset();
                            cpu_mark = cpu_now;
                            self.result_from(
                                status,
                                payload.as_slice(),
                                output_kind,
                                usage,
                                started,
                                cpu_mark,
                            )
                        }
                        Err(why) => self.finish(Interrupt::Protocol(why), started, cpu_mark),
                    };
                    let mut result = result;
                    self.stamp(&mut result);
                    last_answer = now;
                    inflight.pop_front();
                    let ok = result.status == Outcome::Ok;
                    sink(head_index, result);
                    done += 1;
                    if !ok {
                        self.kill_and_reap();
                        return done;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    let result = self.finish(Interrupt::Protocol(e.to_string()), started, cpu_mark);
                    sink(head_index, result);
                    return done + 1;
                }
            }
            match self.wait(started, wall, cpu_mark, cpu_allowance, !outbox.is_empty()) {
                Ok(()) => {}
                Err(interrupt) => {
                    let result = self.finish(interrupt, started, cpu_mark);
                    sink(head_index, result);
                    return done + 1;
                }
            }
        }
    }

    /// Decodes a frame sent during call `id`: its result (the payload read in place when
    /// shared), or a broker request.
    fn answer(&mut self, frame: &[u8], id: u64, _output_kind: WireKind) -> Result<Answer, String> {
        let message = message::decode::<FromWorker>(frame)
            .map_err(|e| format!("undecodable message ({} bytes): {e}", frame.len()))?;
        if let FromWorker::Broker { id: asked, request } = message {
            if asked != id {
                return Err(format!(
                    "a broker request for call {asked} arrived during call {id}"
                ));
            }
            return Ok(Answer::Broker(request));
        }
        let FromWorker::Result {
            id: answered,
            status,
            payload,
        } = message
        else {
            return Err(format!(
                "expected the result of call {id}, got {}",
                name_of(&message)
            ));
        };
        if answered != id {
            return Err(format!(
                "expected the result of call {id}, got call {answered}'s"
            ));
        }
        let bytes = match payload {
            Payload::Inline(bytes) => AnswerBytes::Inline(bytes),
            Payload::Shared { len } => {
                let fd = self
                    .reader
                    .take_fd()
                    .ok_or("a shared payload arrived without its descriptor")?;
                AnswerBytes::Shared(SharedBytes::map(&fd, len, self.options.max_frame)?)
            }
        };
        Ok(Answer::Result(status, bytes))
    }

    /// Waits until the worker sends something (or, with `want_write`, can take more), watching
    /// the wall-clock deadline, the CPU allowance since `cpu_mark`, and the worker's death.
    fn wait(
        &mut self,
        started: Instant,
        wall: Duration,
        cpu_mark: u64,
        cpu_allowance: u64,
        want_write: bool,
    ) -> Result<(), Interrupt> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let deadline = started + wall;
        let now = Instant::now();
        if now >= deadline {
            return Err(Interrupt::Deadline);
        }
        // Sampled only once a call has run for a sampling interval: a fast call should not pay
        // a system call for a check that cannot fire yet.
        if now.duration_since(started) >= CPU_SAMPLE_INTERVAL
            && measure::cpu_ns(self.cpu_clock)
                .is_some_and(|cpu| cpu.saturating_sub(cpu_mark) > cpu_allowance)
        {
            return Err(Interrupt::Cpu);
        }
        let wait = (deadline - now).min(CPU_SAMPLE_INTERVAL);
        let timeout =
            PollTimeout::try_from(wait.as_millis().max(1) as i32).unwrap_or(PollTimeout::MAX);
        let mut events = PollFlags::POLLIN;
        if want_write {
            events |= PollFlags::POLLOUT;
        }
        let (readable, exited, denied) = {
            let mut fds = vec![
                PollFd::new(self.socket.as_fd(), events),
                PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(listener) = &self.listener {
                fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Interrupt::Protocol(format!("poll failed: {e}"))),
            }
            let has = |fd: &PollFd<'_>, flags: PollFlags| {
                fd.revents().is_some_and(|r| r.intersects(flags))
            };
            (
                has(
                    &fds[0],
                    PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR,
                ),
                has(&fds[1], PollFlags::POLLIN),
                fds.get(2).is_some_and(|fd| has(fd, PollFlags::POLLIN)),
            )
        };
        if denied && let Some(name) = self.denied_syscall() {
            return Err(Interrupt::Syscall(name));
        }
        if readable || exited {
            // Drain what the worker sent before it died: answers may be waiting.
            match self.reader.fill(&self.socket) {
                Ok(_) => {}
                Err(FrameError::Closed { .. }) if self.reader.has_frame() => {}
                Err(FrameError::Closed { .. }) => return Err(Interrupt::Exited),
                Err(e) => return Err(Interrupt::Protocol(e.to_string())),
            }
            if exited && !self.reader.has_frame() {
                return Err(Interrupt::Exited);
            }
        }
        Ok(())
    }

    fn result_from(
        &mut self,
        status: u8,
        payload: &[u8],
        output_kind: WireKind,
        usage: Usage,
        started: Instant,
        cpu_start: u64,
    ) -> CallResult {
        let text = crate::outcome::plugin_message;
        match status {
            STATUS_OK => match decode_output(output_kind, payload) {
                Ok(output) => CallResult::ok(output, usage),
                Err(why) => self.finish(Interrupt::Protocol(why), started, cpu_start),
            },
            STATUS_PLUGIN_ERROR => CallResult::failed(Outcome::PluginError, text(payload), usage),
            STATUS_PANIC => CallResult::failed(Outcome::Panic, text(payload), usage),
            other => self.finish(
                Interrupt::Protocol(format!("unknown call status {other}")),
                started,
                cpu_start,
            ),
        }
    }

    fn usage_after_death(&mut self, started: Instant, cpu_start: u64) -> Usage {
        let reaped = self.kill_and_reap();
        Usage {
            cpu_ms: reaped.map_or(0, |r| r.cpu_ns.saturating_sub(cpu_start) / 1_000_000),
            wall_ms: started.elapsed().as_millis() as u64,
            peak_rss_kb: reaped.map_or(0, |r| r.max_rss_kb),
            ..Usage::default()
        }
    }

    /// Waits for the next message, watching the wall-clock deadline, the CPU budget
    /// (`(cpu at start, allowance)` in ns) and the worker's death.
    fn next_message(
        &mut self,
        deadline: Instant,
        cpu_budget: Option<(u64, u64)>,
    ) -> Result<FromWorker, Interrupt> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        loop {
            match self.reader.take_frame() {
                Ok(Some(frame)) => {
                    return message::decode::<FromWorker>(&frame).map_err(|e| {
                        Interrupt::Protocol(format!(
                            "undecodable message ({} bytes): {e}",
                            frame.len()
                        ))
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(Interrupt::Protocol(e.to_string())),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Interrupt::Deadline);
            }
            if let Some((start, allowance)) = cpu_budget
                && measure::cpu_ns(self.cpu_clock)
                    .is_some_and(|cpu| cpu.saturating_sub(start) > allowance)
            {
                return Err(Interrupt::Cpu);
            }
            let mut wait = deadline - now;
            if cpu_budget.is_some() {
                wait = wait.min(CPU_SAMPLE_INTERVAL);
            }
            let timeout =
                PollTimeout::try_from(wait.as_millis().max(1) as i32).unwrap_or(PollTimeout::MAX);
            let (socket_ready, exited, denied) = {
                let mut fds = vec![
                    PollFd::new(self.socket.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN),
                ];
                if let Some(listener) = &self.listener {
                    fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
                }
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(Interrupt::Protocol(format!("poll failed: {e}"))),
                }
                let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
                (
                    ready(&fds[0]),
                    ready(&fds[1]),
                    fds.get(2).is_some_and(|fd| {
                        fd.revents().is_some_and(|r| r.contains(PollFlags::POLLIN))
                    }),
                )
            };
            if denied && let Some(name) = self.denied_syscall() {
                return Err(Interrupt::Syscall(name));
            }
            if socket_ready || exited {
                // Drain what the worker sent before it died: an answer may be waiting.
                match self.reader.fill(&self.socket) {
                    Ok(_) => {}
                    Err(FrameError::Closed { .. }) => {
                        if let Ok(Some(frame)) = self.reader.take_frame() {
                            return message::decode::<FromWorker>(&frame).map_err(|e| {
                                Interrupt::Protocol(format!("undecodable message: {e}"))
                            });
                        }
                        return Err(Interrupt::Exited);
                    }
                    Err(e) => return Err(Interrupt::Protocol(e.to_string())),
                }
                if exited && !self.reader.has_frame() {
                    return Err(Interrupt::Exited);
                }
            }
        }
    }

    fn fail_load(&mut self, interrupt: Interrupt, started: Instant) -> CallResult {
        let mut result = self.finish(interrupt, started, 0);
        result.error = Some(format!(
            "while loading the plugin: {}",
            result.error.unwrap_or_default()
        ));
        result
    }

    /// Ends the worker after an interrupted call and classifies the outcome.
    fn finish(&mut self, interrupt: Interrupt, started: Instant, cpu_start: u64) -> CallResult {
        let limits = self.options.limits;
        let usage = self.usage_after_death(started, cpu_start);
        let denied_syscall = match &interrupt {
            Interrupt::Syscall(name) => Some(name.clone()),
            _ => None,
        };
        let (status, error) = match interrupt {
            Interrupt::Deadline => (
                Outcome::Timeout,
                format!(
                    "wall-clock limit of {} ms exceeded; worker killed",
                    limits.wall_ms
                ),
            ),
            Interrupt::Cpu => (
                Outcome::CpuLimit,
                format!("CPU limit of {} ms exceeded; worker killed", limits.cpu_ms),
            ),
            Interrupt::Protocol(why) => (
                Outcome::ProtocolError,
                format!("worker sent a malformed answer: {why}; worker killed"),
            ),
            Interrupt::Exited => {
                let (status, error) = self.classify_death();
                // A worker that exits on its own with half a frame sent broke the protocol; one
                // killed mid-write (by a signal) is classified by its death.
                let exited_by_itself = self
                    .reaped
                    .as_ref()
                    .is_some_and(|reaped| matches!(reaped.exit, Exit::Code(_)));
                if status == Outcome::Crashed && exited_by_itself && self.reader.has_partial() {
                    (
                        Outcome::ProtocolError,
                        format!(
                            "the worker closed its channel in the middle of a frame ({error}); worker killed"
                        ),
                    )
                } else {
                    (status, error)
                }
            }
            Interrupt::Broker => (
                Outcome::Violation,
                "ended by the broker; worker killed".to_string(),
            ),
            Interrupt::Syscall(name) => (
                Outcome::Violation,
                format!(
                    "system call `{name}` is not allowed for this plugin (seccomp); worker killed"
                ),
            ),
        };
        let mut result = CallResult::failed(status, error, usage);
        if let Some(name) = denied_syscall {
            result.violations.push(crate::outcome::Violation {
                rule: "syscall".to_string(),
                detail: name,
            });
        }
        self.stamp(&mut result);
        if status == Outcome::Crashed || status == Outcome::MemoryLimit {
            let tail = self.captured_output();
            let tail = tail
                .get(tail.len().saturating_sub(2000)..)
                .unwrap_or(&tail)
                .trim();
            if !tail.is_empty()
                && let Some(error) = &mut result.error
            {
                error.push_str("; worker output: ");
                error.push_str(tail);
            }
        }
        result
    }

    fn classify_death(&mut self) -> (Outcome, String) {
        let Some(reaped) = self.kill_and_reap() else {
            return (
                Outcome::Crashed,
                "worker ended and could not be reaped".into(),
            );
        };
        let limits = self.options.limits;
        let memory = format!(
            "memory limit of {} MiB exceeded",
            limits.memory_bytes / (1024 * 1024)
        );
        if let Some(cgroup) = &self.cgroup
            && cgroup.oom_kills() > 0
        {
            return (
                Outcome::MemoryLimit,
                format!("{memory} (cgroup OOM kill); {}", reaped.exit.describe()),
            );
        }
        // A worker that is its PID namespace's init reports the signals it relies on as exit
        // codes (see `sandbox::process::handle_signals_as_init`).
        let signal = match reaped.exit {
            Exit::Signal(signal) => Some(signal),
            Exit::Code(code) if code == exit_code_for_signal(libc::SIGPROF) => Some(libc::SIGPROF),
            Exit::Code(code) if code == exit_code_for_signal(libc::SIGXCPU) => Some(libc::SIGXCPU),
            Exit::Code(code) if code == exit_code_for_signal(libc::SIGABRT) => Some(libc::SIGABRT),
            _ => None,
        };
        match (signal, reaped.exit) {
            (Some(libc::SIGPROF | libc::SIGXCPU), _) => (
                Outcome::CpuLimit,
                format!(
                    "CPU limit of {} ms exceeded (in-process CPU timer)",
                    limits.cpu_ms
                ),
            ),
            (Some(libc::SIGABRT | libc::SIGSEGV | libc::SIGBUS), _)
                if self.cgroup.is_none()
                    && self.captured_output().contains("memory allocation of") =>
            {
                (
                    Outcome::MemoryLimit,
                    format!(
                        "{memory} (RLIMIT_AS, allocation failure); {}",
                        reaped.exit.describe()
                    ),
                )
            }
            (Some(libc::SIGABRT), Exit::Code(_)) => {
                (Outcome::Crashed, "worker aborted (SIGABRT)".to_string())
            }
            (_, exit) => (Outcome::Crashed, format!("worker {}", exit.describe())),
        }
    }

    /// Completes `result` with what the call did through the broker (counts, violations,
    /// logs; a call that broke a broker rule ends `violation`, its output kept) and with what
    /// ran it: this worker's layers, Landlock ABI and pid.
    fn stamp(&mut self, result: &mut CallResult) {
        if result.worker_pid.is_some() {
            return; // Already stamped (a result can pass through `finish` and the stream).
        }
        let call = self.broker.take_call();
        let usage = &mut result.usage;
        usage.file_ops = call.file_ops;
        usage.net_requests = call.net_requests;
        usage.db_queries = call.db_queries;
        usage.bytes_in = call.bytes_in;
        usage.bytes_out = call.bytes_out;
        if !call.violations.is_empty() {
            let summary: Vec<String> = call
                .violations
                .iter()
                .map(|v| format!("{}: {}", v.rule, v.detail))
                .collect();
            match result.status {
                Outcome::Ok | Outcome::PluginError | Outcome::Panic => {
                    result.status = Outcome::Violation;
                    result.error = Some(format!("broker denied: {}", summary.join("; ")));
                }
                Outcome::Violation if result.violations.is_empty() => {
                    result.error = Some(format!(
                        "broker denied: {}; {}",
                        summary.join("; "),
                        result.error.as_deref().unwrap_or_default()
                    ));
                }
                _ => {}
            }
            let mut violations = call.violations;
            violations.append(&mut result.violations);
            result.violations = violations;
        }
        result.logs = call.logs;
        result.notifications = call.notifications;
        result.layers.clone_from(&self.layers);
        result.landlock_abi = self.landlock_abi;
        result.worker_pid = Some(self.pid);
    }

    /// Reads the pending seccomp notification: the name of the system call the kernel says was
    /// denied. The worker is killed right after, so the notification is never answered.
    fn denied_syscall(&mut self) -> Option<String> {
        let listener = self.listener.as_ref()?;
        match crate::sandbox::seccomp::receive_notification(listener) {
            Ok(notification) => Some(crate::sandbox::seccomp::syscall_name(notification.nr)),
            // ENOENT: the thread that made the call died meanwhile; nothing to report.
            Err(_) => None,
        }
    }

    /// Kills the worker's process tree (if still running) and reaps it, once.
    fn kill_and_reap(&mut self) -> Option<Reaped> {
        if self.reaped.is_none() {
            measure::kill_tree(&self.pidfd, self.pid);
            self.reaped = measure::reap(self.pid).ok();
        }
        self.reaped
    }
}

/// Starts `exe` as one worker process (exec mode) and returns its pid.
fn spawn_exec(
    exe: &std::path::Path,
    worker_end: OwnedFd,
    capture_write: OwnedFd,
) -> std::io::Result<i32> {
    let mut command = Command::new(exe);
    command
        .arg("--parent-pid")
        .arg(std::process::id().to_string())
        .env_clear()
        // One malloc arena: keeps address-space use close to memory use under RLIMIT_AS.
        .env("MALLOC_ARENA_MAX", "1")
        .stdin(Stdio::from(worker_end))
        .stdout(Stdio::from(capture_write.try_clone()?))
        .stderr(Stdio::from(capture_write));
    let child = spawn::spawn(command)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", exe.display())))?;
    // The command, and with it our copies of the worker's descriptors, is gone.
    Ok(child.id() as i32)
}

impl Worker {
    /// Retires the worker: runs the plugin's `shutdown` entry point (if it has one) under
    /// [`WorkerOptions::shutdown_ms`], asks the worker to exit, and kills and reaps it. Returns
    /// the result of `shutdown`, if it ran.
    pub fn retire(mut self) -> Option<CallResult> {
        self.retire_now(true)
    }

    /// Runs `shutdown`, then kills the worker; with `wait`, also reaps it here, else hands it
    /// to the background reaper ([`measure::reap_later`]).
    fn retire_now(&mut self, wait: bool) -> Option<CallResult> {
        if self.reaped.is_some() {
            return None;
        }
        let mut result = None;
        if self.entries.contains_key(SHUTDOWN_HOOK) {
            let wall_ms = self.options.limits.wall_ms;
            self.options.limits.wall_ms = self.options.shutdown_ms.min(wall_ms);
            self.stream(SHUTDOWN_HOOK, &[&[]], 1, &mut |_, r| result = Some(r));
            self.options.limits.wall_ms = wall_ms;
        }
        if self.reaped.is_none() {
            let _ = self.send(
                &ToWorker::Shutdown,
                Instant::now() + Duration::from_millis(10),
            );
            if wait {
                self.kill_and_reap();
            } else {
                measure::kill_tree(&self.pidfd, self.pid);
                // The cgroup and the temporary directory go with it: they must outlive the
                // process.
                let cgroups = (self.cgroup.take(), self.tasks_cgroup.take());
                let temp_dir = self.temp_dir.take();
                measure::reap_later(self.pid, move || drop((cgroups, temp_dir)));
            }
        }
        result
    }
}

impl Drop for Worker {
    /// Retires the worker without waiting for the kernel to tear the process down: it is
    /// killed here and reaped by a background thread moments later. [`Worker::retire`] waits.
    fn drop(&mut self) {
        self.retire_now(false);
    }
}

fn name_of(message: &FromWorker) -> &'static str {
    match message {
        FromWorker::Confined { .. } => "Confined",
        FromWorker::Ready => "Ready",
        FromWorker::LoadFailed { .. } => "LoadFailed",
        FromWorker::Result { .. } => "Result",
        FromWorker::Broker { .. } => "Broker",
    }
}

/// What a worker sent during a call.
enum Answer {
    Result(u8, AnswerBytes),
    Broker(Vec<u8>),
}

/// A result's bytes: in the frame, or mapped from the worker's sealed memfd.
enum AnswerBytes {
    Inline(Vec<u8>),
    Shared(SharedBytes),
}

impl AnswerBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            AnswerBytes::Inline(bytes) => bytes,
            AnswerBytes::Shared(mapped) => mapped.as_slice(),
        }
    }
}

/// A request's input: inline, or (from [`SHARED_THRESHOLD`] bytes) in a sealed memfd sent with
/// the frame. If the memfd cannot be made, the input goes inline.
fn outgoing_payload(input: &[u8]) -> (Payload, Option<OwnedFd>) {
    if input.len() >= SHARED_THRESHOLD
        && let Ok(fd) = shared::seal("plugin-input", input)
    {
        let len = input.len() as u64;
        return (Payload::Shared { len }, Some(fd));
    }
    (Payload::Inline(input.to_vec()), None)
}

/// Turns the plugin's output bytes into the JSON the host reports, checking them against the
/// declared output kind.
fn decode_output(kind: WireKind, payload: &[u8]) -> Result<serde_json::Value, String> {
    match kind {
        WireKind::Json => {
            json_size::check(payload, json_size::MAX_VALUES)
                .map_err(|e| format!("output is not acceptable JSON: {e}"))?;
            serde_json::from_slice(payload).map_err(|e| format!("output is not valid JSON: {e}"))
        }
        WireKind::Text => std::str::from_utf8(payload)
            .map(|text| serde_json::Value::String(text.to_string()))
            .map_err(|e| format!("text output is not UTF-8: {e}")),
        WireKind::Bytes => {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let mut hex = String::with_capacity(payload.len() * 2);
            for byte in payload {
                hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
                hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
            }
            Ok(serde_json::json!({ "hex": hex }))
        }
        WireKind::None if payload.is_empty() => Ok(serde_json::Value::Null),
        WireKind::None => Err(format!(
            "entry point declared no output but sent {} bytes",
            payload.len()
        )),
    }
}

//! The worker side: what runs inside `plugin-worker`.
//!
//! Setup order (SPEC §7), all single-threaded and before any plugin byte (constructors
//! included) runs:
//! 1. own session and process group; death-of-parent signal, armed without a race (done by
//!    the launcher's spare, which the launcher forked into a PID namespace of its own);
//! 2. the IPC channel moved to fd 3, every other inherited descriptor closed;
//! 3. signal dispositions and mask reset; the environment emptied;
//! 4. the plugin's sealed memfd and the load request received; as root, uid/gid and
//!    capabilities dropped ([`identity`]);
//! 5. rlimits and the per-call CPU timer;
//! 6. user, mount, IPC, UTS (and network) namespaces, the private tmpfs entered as working
//!    directory ([`namespaces`]);
//! 7. `PR_SET_NO_NEW_PRIVS`;
//! 8. Landlock ([`crate::sandbox::landlock`]);
//! 9. the seccomp allow-list, whose listener goes to the host with `Confined` (the last
//!    message the host can fully trust: the plugin has not run yet);
//! 10. the plugin `dlopen`ed from that memfd (`RTLD_NOW | RTLD_LOCAL`), the ABI root checked
//!     (magic, version range, `abi_stable` layout of `CallOutcome`), every entry point
//!     resolved; `Ready` reported.
//!
//! Then it serves calls (the host calls `init` first if the plugin has one) until the host says
//! `Shutdown` or closes the channel. A layer that cannot be applied is reported as missing; the
//! host decides whether the plugin's level can do without it.

use crate::ipc::frame::{self, DEFAULT_MAX_FRAME, FrameReader, Outbox};
use crate::ipc::message::{self, FromWorker, LoadRequest, Payload, ToWorker};
use crate::ipc::shared::{self, SHARED_THRESHOLD, SharedBytes};
use crate::sandbox::{Layer, identity, landlock, limits, namespaces, process, seccomp};
use abi_stable::StableAbi;
use abi_stable::std_types::{RSlice, RVec};
use plugin_manifest::broker;
use plugin_sdk::abi::{
    ABI_ROOT_MAGIC, ABI_ROOT_SYMBOL, AbiRoot, CallOutcome, EntryFn, HOST_VTABLE_MAGIC, HostInitFn,
    HostVtable, STATUS_PLUGIN_ERROR,
};
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

/// Exit code when setup fails before the channel works.
const EXIT_SETUP_FAILED: i32 = 70;

/// Entry point of the `plugin-worker` executable. Never returns.
///
/// `plugin-worker --launcher --parent-pid N` runs the launcher (fork server, see
/// [`super::launcher`]); `plugin-worker --parent-pid N` runs one worker directly (exec mode).
pub fn main() -> ! {
    let parent = parse_parent_pid();
    if std::env::args().any(|a| a == "--launcher") {
        super::launcher::serve(parent)
    }
    enter_session(parent, None);
    run()
}

/// Setup step 1: own session and process group, death-of-parent signal (`parent` is the host's
/// pid, `parent_pidfd` a pidfd on it when the caller has one). Done by a pre-forked spare
/// before it is assigned (see [`super::launcher`]).
pub fn enter_session(parent: i32, parent_pidfd: Option<std::os::fd::BorrowedFd<'_>>) {
    if let Err(e) = process::enter_session_and_watch_parent(parent, parent_pidfd) {
        if e.kind() != std::io::ErrorKind::NotConnected {
            eprintln!("plugin-worker: {e}");
        }
        exit(EXIT_SETUP_FAILED);
    }
}

/// The worker proper, after [`enter_session`], with the IPC channel on descriptor 0 and the
/// capture pipe on 1 and 2.
pub fn run() -> ! {
    let mut channel = match process::take_ipc_channel() {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("plugin-worker: cannot set up the IPC channel: {e}");
            exit(EXIT_SETUP_FAILED);
        }
    };
    if let Err(e) = process::reset_signals() {
        fail(&mut channel, "signal-reset", &e.to_string());
    }
    let in_pid_namespace = namespaces::in_own_pid_namespace();
    if in_pid_namespace {
        process::handle_signals_as_init();
    }
    let memfd = match crate::ipc::fd::recv_fd(&channel) {
        Ok(fd) => fd,
        Err(e) => fail(&mut channel, "receive-plugin", &e.to_string()),
    };
    let request = match frame::read_frame(&mut channel, DEFAULT_MAX_FRAME)
        .ok()
        .and_then(|f| message::decode(&f).ok())
    {
        Some(ToWorker::Load(request)) => request,
        _ => fail(
            &mut channel,
            "receive-load-request",
            "expected a Load request",
        ),
    };
    let confined = confine(&mut channel, &request, in_pid_namespace);

    let mut outbox = Outbox::default();
    let sent = outbox
        .push(
            &message::encode(&FromWorker::Confined {
                layers: confined.layers,
                landlock_abi: confined.landlock_abi,
                missing: confined.missing,
            }),
            DEFAULT_MAX_FRAME,
            confined.listener,
        )
        .and_then(|()| outbox.flush(&channel));
    if !matches!(sent, Ok(true)) {
        exit(EXIT_SETUP_FAILED);
    }
    // The host checks the layers against the plugin's level before any plugin byte runs: wait
    // for its go-ahead (a refusal is the channel closing, or the host killing us).
    match frame::read_frame(&mut channel, DEFAULT_MAX_FRAME)
        .ok()
        .and_then(|f| message::decode::<ToWorker>(&f).ok())
    {
        Some(ToWorker::Proceed) => {}
        _ => exit(0),
    }

    let (library, entries) = match load(&memfd, &request) {
        Ok(loaded) => loaded,
        Err((stage, message)) => fail(&mut channel, stage, &message),
    };
    send(&mut channel, &FromWorker::Ready);
    let sweep = in_pid_namespace
        && request
            .confinement
            .seccomp
            .is_none_or(|grants| grants.spawn);
    serve(channel, &entries, request.limits.cpu_ms, sweep);
    drop(library);
    exit(0)
}

/// What [`confine`] achieved.
struct Confined {
    layers: Vec<String>,
    landlock_abi: Option<u32>,
    missing: Vec<(String, String)>,
    listener: Option<OwnedFd>,
}

/// Steps 3 (environment) to 9, in order. A layer that fails is reported missing (the host
/// decides); a failure that leaves the worker in an unknown state ends it.
fn confine(channel: &mut UnixStream, request: &LoadRequest, in_pid_namespace: bool) -> Confined {
    let plan = &request.confinement;
    let mut layers: Vec<String> = Vec::new();
    let mut missing = Vec::new();
    let mut miss = |layer: &str, why: String| missing.push((layer.to_string(), why));
    if in_pid_namespace {
        layers.push(Layer::PID_NAMESPACE.into());
    } else {
        miss(
            Layer::PID_NAMESPACE,
            "the launcher could not create a PID namespace (needs root or user namespaces; exec mode has none)".into(),
        );
    }
    clear_environment(plan.temp_dir.as_deref());

    // 4. Identity. Reported only when the worker really moved to the unprivileged identity:
    // a worker of a non-root host keeps the host's own uid, which is not a drop.
    match plan.drop_to {
        Some(id) => match identity::drop_root(id) {
            Ok(true) if identity::is_unprivileged() => layers.push(Layer::UID_DROP.into()),
            Ok(true) => fail(channel, "uid-drop", "still privileged after the drop"),
            Ok(false) => miss(
                Layer::UID_DROP,
                "the worker did not start as root, so there was nothing to drop".into(),
            ),
            Err(e) => fail(channel, "uid-drop", &e.to_string()),
        },
        None => miss(
            Layer::UID_DROP,
            "the host does not run as root, so the worker keeps the host's uid".into(),
        ),
    }

    // 5. rlimits.
    if let Err(e) = limits::apply(&request.limits, request.address_space_bytes) {
        fail(channel, "rlimits", &e.to_string());
    }
    layers.push(Layer::RLIMITS.into());

    // 6. Namespaces and the private temporary directory.
    if let Some(private_network) = plan.namespaces {
        match namespaces::enter(private_network, plan.temp_dir.as_deref(), plan.temp_bytes) {
            Ok(entered) => {
                layers.push(Layer::NAMESPACES.into());
                if entered.private_tmpfs {
                    layers.push(Layer::PRIVATE_TMPFS.into());
                }
            }
            Err(e) => miss(Layer::NAMESPACES, e.to_string()),
        }
    }
    if let Some(dir) = &plan.temp_dir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (the worker's uid must be able to search every directory above it: point TMPDIR \
             at one with mode 0711 or 1777, such as /tmp)"
        } else {
            ""
        };
        fail(
            channel,
            "temp-dir",
            &format!("{}: {e}{hint}", dir.display()),
        );
    }

    // 7. No new privileges, ever (also required by Landlock and seccomp without privilege).
    // SAFETY: plain integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
        fail(
            channel,
            "no-new-privs",
            &std::io::Error::last_os_error().to_string(),
        );
    }
    layers.push(Layer::NO_NEW_PRIVS.into());

    // 8. Landlock. Rules the kernel cannot enforce count as the layer missing (a level that
    // requires Landlock then refuses, naming what is lacking): no silent degradation.
    let mut landlock_abi = None;
    if let Some(spec) = &plan.landlock {
        match landlock::apply(spec) {
            Ok(applied) if applied.lacking.is_empty() => {
                layers.push(Layer::LANDLOCK.into());
                landlock_abi = Some(applied.abi);
            }
            Ok(applied) => {
                layers.push(Layer::LANDLOCK_PARTIAL.into());
                landlock_abi = Some(applied.abi);
                miss(
                    Layer::LANDLOCK,
                    format!(
                        "kernel Landlock ABI {} cannot enforce {}",
                        applied.abi,
                        applied.lacking.join(", ")
                    ),
                );
            }
            Err(e) => miss(Layer::LANDLOCK, e.to_string()),
        }
    }

    // The uid drop cleared the death-of-parent signal (any credential change does): arm it
    // again now that the credentials are final, before seccomp (which does not allow it).
    if let Err(e) = process::rearm_parent_death() {
        fail(channel, "parent-death-signal", &e.to_string());
    }

    // 9. Seccomp, last: everything above needed system calls the filter denies.
    let mut listener = None;
    if let Some(grants) = plan.seccomp {
        match seccomp::programs_for(grants).and_then(seccomp::install) {
            Ok(fd) => {
                layers.push(Layer::SECCOMP.into());
                listener = Some(fd);
            }
            Err(e) => miss(Layer::SECCOMP, e.to_string()),
        }
    }
    Confined {
        layers,
        landlock_abi,
        missing,
        listener,
    }
}

/// Replaces the inherited environment (the launcher's, already empty of host variables) with
/// `HOME` and `TMPDIR` pointing at the private temporary directory.
fn clear_environment(temp_dir: Option<&std::path::Path>) {
    for (name, _) in std::env::vars_os() {
        // SAFETY: the worker is single-threaded here; nothing reads the environment
        // concurrently.
        unsafe { std::env::remove_var(name) };
    }
    if let Some(dir) = temp_dir {
        for name in ["HOME", "TMPDIR"] {
            // SAFETY: as above, single-threaded.
            unsafe { std::env::set_var(name, dir) };
        }
    }
}

fn parse_parent_pid() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .position(|a| a == "--parent-pid")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
    {
        Some(pid) => pid,
        None => {
            eprintln!(
                "plugin-worker: started without --parent-pid; it is run by host-loader, not by hand"
            );
            exit(2);
        }
    }
}

pub(crate) fn exit(code: i32) -> ! {
    // _exit: do not run the plugin's atexit handlers or destructors in a process that is done.
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

fn send(channel: &mut UnixStream, message: &FromWorker) {
    if frame::write_frame(channel, &message::encode(message), DEFAULT_MAX_FRAME).is_err() {
        // The host is gone or the channel is broken: nothing left to do.
        exit(EXIT_SETUP_FAILED);
    }
}

fn fail(channel: &mut UnixStream, stage: &str, message: &str) -> ! {
    send(
        channel,
        &FromWorker::LoadFailed {
            stage: stage.to_string(),
            message: message.to_string(),
        },
    );
    exit(EXIT_SETUP_FAILED)
}

type Loaded = (libloading::os::unix::Library, HashMap<String, EntryFn>);

fn load(memfd: &OwnedFd, request: &LoadRequest) -> Result<Loaded, (&'static str, String)> {
    let path = format!("/proc/self/fd/{}", memfd.as_raw_fd());
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
    // SAFETY: loading runs the plugin's constructors. That is the point of the worker: it is
    // confined, and nothing in this process is trusted after this line.
    let library = unsafe { libloading::os::unix::Library::open(Some(&path), flags) }
        .map_err(|e| ("dlopen", e.to_string()))?;

    // SAFETY: PLUGIN_ABI_ROOT is declared by plugin-sdk as a `static AbiRoot`; if the plugin
    // lies about its type, the checks below read garbage in a process that is already the
    // plugin's, which harms only itself.
    let root: *const AbiRoot = unsafe { library.get::<*const AbiRoot>(ABI_ROOT_SYMBOL.as_bytes()) }
        .map(|symbol| *symbol)
        .map_err(|e| ("abi-root", format!("{ABI_ROOT_SYMBOL} not found: {e}")))?;
    // SAFETY: `root` points at the exported static resolved just above (non-null when found).
    let root =
        unsafe { root.as_ref() }.ok_or(("abi-root", format!("{ABI_ROOT_SYMBOL} is null")))?;
    if root.magic != ABI_ROOT_MAGIC {
        return Err(("abi-root", "bad magic in the ABI root".to_string()));
    }
    let (min, max) = request.abi_versions;
    if !(min..=max).contains(&root.abi_version) {
        return Err((
            "abi-version",
            format!(
                "plugin ABI version {} is outside {min}..={max}",
                root.abi_version
            ),
        ));
    }
    abi_stable::abi_stability::abi_checking::check_layout_compatibility(
        <CallOutcome as StableAbi>::LAYOUT,
        root.call_outcome_layout,
    )
    .map_err(|e| {
        (
            "abi-layout",
            format!("CallOutcome layout differs from the host's: {e}"),
        )
    })?;

    let mut entries = HashMap::new();
    for hook in &request.hooks {
        let symbol = plugin_manifest::hook_symbol(hook);
        // SAFETY: the symbol was checked by static inspection to be an exported function whose
        // signature hash matches `EntryFn`'s shape for this SDK ABI version.
        let function = unsafe { library.get::<EntryFn>(symbol.as_bytes()) }
            .map_err(|e| ("resolve-entry-point", format!("{symbol}: {e}")))?;
        entries.insert(hook.clone(), *function);
    }
    // The broker entry point, for plugins that take it (every plugin built with this SDK's
    // `plugin!`; an older one simply has no host services).
    // SAFETY: PLUGIN_HOST_INIT is emitted by `plugin!` as `extern "C" fn(&'static
    // HostVtable)`; a plugin lying about it harms only its own, already confined, process.
    if let Ok(init) = unsafe { library.get::<HostInitFn>(broker::HOST_INIT_SYMBOL.as_bytes()) } {
        init(&HOST_VTABLE);
    }
    Ok((library, entries))
}

/// The channel to the host, shared by the serve loop and the broker entry point the plugin
/// calls during a call ([`broker_call`]). One reader for both, so a broker reply and the next
/// pipelined call request can never be read by the wrong side.
struct Link {
    channel: UnixStream,
    reader: FrameReader,
    /// Frames read while waiting for a broker reply (pipelined call requests), served next.
    pending: VecDeque<Vec<u8>>,
    /// The call in progress, if any: broker requests are made on its behalf.
    current: Option<u64>,
}

static LINK: Mutex<Option<Link>> = Mutex::new(None);

fn with_link<T>(f: impl FnOnce(&mut Link) -> T) -> Option<T> {
    let mut guard = LINK.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_mut().map(f)
}

/// The broker entry point handed to the plugin ([`HostVtable::call`]): forwards the encoded
/// request to the host on behalf of the call in progress and returns the host's encoded answer.
/// A broken channel ends the worker: there is nobody left to answer.
extern "C" fn broker_call(request: RSlice<'_, u8>) -> RVec<u8> {
    let unavailable = |message: &str| {
        let response: broker::Response = Err(broker::Error {
            kind: broker::ErrorKind::Unavailable,
            message: message.to_string(),
        });
        RVec::from(broker::encode(&response))
    };
    if request.len() > DEFAULT_MAX_FRAME - 1024 {
        let response: broker::Response = Err(broker::Error {
            kind: broker::ErrorKind::TooLarge,
            message: format!(
                "a broker request of {} bytes exceeds the {DEFAULT_MAX_FRAME}-byte frame limit",
                request.len()
            ),
        });
        return RVec::from(broker::encode(&response));
    }
    let answered = with_link(|link| {
        let Some(id) = link.current else {
            return Some(unavailable(
                "no call is in progress: host services are available only during a call",
            ));
        };
        let message = FromWorker::Broker {
            id,
            request: request.to_vec(),
        };
        if frame::write_frame(
            &mut link.channel,
            &message::encode(&message),
            DEFAULT_MAX_FRAME,
        )
        .is_err()
        {
            return None;
        }
        loop {
            match link.reader.take_frame() {
                Ok(Some(frame)) => match message::decode::<ToWorker>(&frame) {
                    Ok(ToWorker::BrokerReply {
                        id: answered,
                        reply,
                    }) if answered == id => {
                        return Some(RVec::from(reply));
                    }
                    Ok(ToWorker::Call { .. }) => link.pending.push_back(frame),
                    _ => return None,
                },
                Ok(None) => {
                    if link.reader.fill(&link.channel).is_err() {
                        return None;
                    }
                }
                Err(_) => return None,
            }
        }
    });
    match answered {
        Some(Some(reply)) => reply,
        Some(None) => exit(0),
        None => unavailable("the worker has no channel to its host"),
    }
}

static HOST_VTABLE: HostVtable = HostVtable {
    magic: HOST_VTABLE_MAGIC,
    protocol_version: broker::BROKER_PROTOCOL_VERSION,
    call: broker_call,
};

/// The next request frame: one stashed by [`broker_call`], else one from the channel. `None`
/// when the channel is closed or broken.
fn next_frame() -> Option<Vec<u8>> {
    with_link(|link| {
        if let Some(frame) = link.pending.pop_front() {
            return Some(frame);
        }
        loop {
            match link.reader.take_frame() {
                Ok(Some(frame)) => return Some(frame),
                Ok(None) => {
                    link.reader.fill(&link.channel).ok()?;
                }
                Err(_) => return None,
            }
        }
    })
    .flatten()
}

/// Serves calls until `Shutdown` or the end of the channel. Calls run one at a time, in order.
/// Requests are read in batches (one read takes every request that has arrived). Each answer
/// is written as soon as its call returns: holding a finished answer back to batch it with the
/// next would delay it by the next call's unknown duration, which the host would count against
/// this call's deadline and usage.
///
/// With `sweep` (the plugin may create processes, and the worker is its PID namespace's
/// init), every other process in the namespace is killed and reaped after each call: nothing a
/// call started outlives it.
fn serve(channel: UnixStream, entries: &HashMap<String, EntryFn>, cpu_ms: u64, sweep: bool) {
    *LINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Link {
        channel,
        reader: FrameReader::new(DEFAULT_MAX_FRAME),
        pending: VecDeque::new(),
        current: None,
    });
    let mut outbox = Outbox::default();
    while let Some(frame) = next_frame() {
        let (id, hook, input) = match message::decode::<ToWorker>(&frame) {
            Ok(ToWorker::Call { id, hook, input }) => (id, hook, input),
            Ok(ToWorker::Shutdown) => return,
            Ok(ToWorker::Load(_) | ToWorker::Proceed | ToWorker::BrokerReply { .. }) | Err(_) => {
                return;
            }
        };
        let shared;
        let input: &[u8] = match &input {
            Payload::Inline(bytes) => bytes,
            Payload::Shared { len } => {
                let Some(fd) = with_link(|link| link.reader.take_fd()).flatten() else {
                    return;
                };
                match SharedBytes::map(&fd, *len, DEFAULT_MAX_FRAME) {
                    Ok(mapped) => shared = mapped,
                    Err(_) => return,
                }
                shared.as_slice()
            }
        };
        let (status, output) = match entries.get(&hook) {
            Some(entry) => {
                let _ = limits::arm_cpu_for_call(cpu_ms);
                with_link(|link| link.current = Some(id));
                let outcome = entry(RSlice::from_slice(input));
                with_link(|link| link.current = None);
                if sweep {
                    process::kill_other_processes_in_namespace();
                }
                (outcome.status, outcome.payload)
            }
            None => (
                STATUS_PLUGIN_ERROR,
                format!("no entry point `{hook}` was loaded")
                    .into_bytes()
                    .into(),
            ),
        };
        let (payload, fd) = if output.len() >= SHARED_THRESHOLD {
            match shared::seal("plugin-output", &output) {
                Ok(fd) => (
                    Payload::Shared {
                        len: output.len() as u64,
                    },
                    Some(fd),
                ),
                Err(_) => (Payload::Inline(output.to_vec()), None),
            }
        } else {
            (Payload::Inline(output.to_vec()), None)
        };
        let answer = FromWorker::Result {
            id,
            status,
            payload,
        };
        if outbox
            .push(&message::encode(&answer), DEFAULT_MAX_FRAME, fd)
            .is_err()
        {
            let refusal = FromWorker::Result {
                id,
                status: STATUS_PLUGIN_ERROR,
                payload: Payload::Inline(
                    format!(
                        "output of {} bytes does not fit in one frame (at most {DEFAULT_MAX_FRAME} \
                         bytes with the message around it); return less",
                        output.len()
                    )
                    .into_bytes(),
                ),
            };
            let _ = outbox.push(&message::encode(&refusal), DEFAULT_MAX_FRAME, None);
        }
        // Blocking socket: flush writes everything or fails.
        let flushed = with_link(|link| outbox.flush(&link.channel));
        if !matches!(flushed, Some(Ok(true))) {
            return;
        }
    }
}

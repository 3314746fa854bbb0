//! Kernel-enforced confinement: every hostile example plugin ends with the asserted outcome,
//! nothing it tried got through (checked from outside too: files, process table, listener),
//! no process of its outlives the call, and the host's next call succeeds.

use host_loader::{CallResult, Outcome, Plugin, Worker};
use integration_tests::{binary, plugin, stories, stories_path, worker_options};
use plugin_manifest::SecurityLevel;
use serde_json::{Value, json};
use std::path::Path;

fn first_story() -> Vec<u8> {
    serde_json::to_vec(&stories()[0]).unwrap()
}

/// Whether this process runs as root, which these tests need (the uid drop and the PID
/// namespace are what they check); says so loudly when it does not.
fn as_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        integration_tests::skip(
            "confinement tests need root (uid drop, PID namespace); run as root",
        );
    }
    root
}

/// The host keeps serving: a fresh `word-stats` worker answers correctly.
fn word_stats_still_works() {
    let plugin = Plugin::open(plugin("word-stats")).unwrap();
    let mut worker = Worker::start(&plugin, worker_options(&plugin)).unwrap();
    let result = worker.call("analyze", &first_story());
    assert_eq!(result.status, Outcome::Ok, "{result:?}");
    assert_eq!(result.output.unwrap()["words"], 129);
}

/// Processes whose name (comm) is `name`, from the process table.
fn processes_named(name: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == name)
        })
        .collect()
}

/// What an attack left behind, for checks from outside.
struct Aftermath {
    result: CallResult,
    captured: String,
}

/// Runs `name`'s `analyze` once with `text` as the story text, at `level` (default: the
/// plugin's own), then retires the worker and checks that neither it nor its temporary
/// directory outlives the call, and that the host still serves `word-stats`.
fn attack(name: &str, text: &str, level: Option<SecurityLevel>) -> Aftermath {
    let plugin = Plugin::open(plugin(name)).unwrap();
    let mut options = worker_options(&plugin);
    options.level = level;
    let mut worker = Worker::start(&plugin, options).unwrap();
    let pid = worker.pid();
    let temp_dir = worker.temp_dir().unwrap().to_path_buf();
    let input = serde_json::to_vec(&json!({ "title": name, "text": text })).unwrap();
    let result = worker.call("analyze", &input);
    for layer in [
        "pid-namespace",
        "uid-drop",
        "namespaces",
        "landlock",
        "seccomp",
    ] {
        assert!(
            result.layers.iter().any(|l| l == layer),
            "{name}: layer {layer} missing: {:?}",
            result.layers
        );
    }
    if result.status != Outcome::Ok {
        assert!(
            !worker.is_alive(),
            "{name}: a failed call retires its worker"
        );
    }
    let captured = worker.captured_output();
    worker.retire();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "{name}: worker {pid} outlived its call"
    );
    assert!(
        !temp_dir.exists(),
        "{name}: temporary directory {} outlived the worker",
        temp_dir.display()
    );
    word_stats_still_works();
    Aftermath { result, captured }
}

fn assert_violation(result: &CallResult, syscall: &str) {
    assert_eq!(result.status, Outcome::Violation, "{result:?}");
    assert_eq!(result.violations.len(), 1, "{result:?}");
    assert_eq!(result.violations[0].rule, "syscall");
    assert_eq!(result.violations[0].detail, syscall, "{result:?}");
    assert!(result.error.as_deref().unwrap().contains(syscall));
}

/// The plugin's own account: it must say it did not get through.
fn assert_not_escaped(result: &CallResult) -> String {
    assert_eq!(result.status, Outcome::Ok, "{result:?}");
    let output = result.output.as_ref().unwrap();
    assert_eq!(output["escaped"], false, "{output}");
    output["detail"].as_str().unwrap().to_string()
}

#[test]
fn fork_bomb_is_stopped_at_its_first_fork() {
    if !as_root() {
        return;
    }
    let after = attack("hostile-fork-bomb", "", None);
    assert_violation(&after.result, "clone");
}

#[test]
fn threads_are_allowed_under_standard_and_strict() {
    if !as_root() {
        return;
    }
    let text = stories()[3]["text"].as_str().unwrap().to_string();
    for level in [SecurityLevel::Standard, SecurityLevel::Strict] {
        let after = attack("threads-ok", &text, Some(level));
        assert_eq!(
            after.result.status,
            Outcome::Ok,
            "{level}: {:?}",
            after.result
        );
        let output = after.result.output.unwrap();
        assert_eq!(output["threads"], 8);
        assert_eq!(output["words"], text.split_whitespace().count());
    }
}

#[test]
fn direct_network_connection_is_a_violation_and_nothing_connects() {
    if !as_root() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let after = attack("hostile-net", &json!({ "port": port }).to_string(), None);
    assert_violation(&after.result, "socket");
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "someone connected: {accepted:?}"
    );
}

#[test]
fn secrets_outside_the_grants_cannot_be_read() {
    if !as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "the host's secret").unwrap();
    let after = attack("hostile-read-secrets", secret.to_str().unwrap(), None);
    let detail = assert_not_escaped(&after.result);
    assert!(
        detail.contains(&format!("{}: Permission denied", secret.display())),
        "{detail}"
    );
    assert!(
        detail.contains("/etc/shadow: Permission denied"),
        "{detail}"
    );
    assert!(!after.captured.contains("the host's secret"));
}

#[test]
fn files_outside_the_private_directory_cannot_be_written() {
    if !as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("planted.txt");
    let after = attack("hostile-write-outside", target.to_str().unwrap(), None);
    let detail = assert_not_escaped(&after.result);
    assert!(detail.contains("Permission denied"), "{detail}");
    assert!(!target.exists());
    assert!(!Path::new("/tmp/hostile-write-outside.marker").exists());
}

#[test]
fn exec_is_a_violation_and_the_program_never_runs() {
    if !as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("exec.marker");
    let after = attack("hostile-exec", marker.to_str().unwrap(), None);
    assert_violation(&after.result, "execve");
    assert!(!marker.exists());
}

#[test]
fn ptrace_of_the_host_is_a_violation() {
    if !as_root() {
        return;
    }
    let after = attack("hostile-ptrace", &std::process::id().to_string(), None);
    assert_violation(&after.result, "ptrace");
}

#[test]
fn the_host_cannot_be_signalled() {
    if !as_root() {
        return;
    }
    // The plugin sends SIGTERM to the pid it is given: this test process. Had it arrived, the
    // test binary would be dead; the plugin's own account says why it did not.
    let after = attack("hostile-kill-parent", &std::process::id().to_string(), None);
    let detail = assert_not_escaped(&after.result);
    assert!(
        detail.contains("No such process") || detail.contains("Operation not permitted"),
        "{detail}"
    );
}

#[test]
fn a_setsid_grandchild_dies_with_the_call() {
    if !as_root() {
        return;
    }
    // Forking needs process.spawn, which only Minimal allows; the seccomp filter then lets it
    // fork, and the PID namespace is what ends the tree.
    let after = attack("hostile-double-fork", "", Some(SecurityLevel::Minimal));
    assert_eq!(after.result.status, Outcome::Ok, "{:?}", after.result);
    let detail = after.result.output.unwrap()["detail"].to_string();
    assert!(detail.contains("grandchild"), "{detail}");
    assert_eq!(processes_named("hostile-orphan"), Vec::<u32>::new());

    // And when the call overruns its deadline, the watchdog's kill takes the tree with it.
    let after = attack("hostile-double-fork", "wait", Some(SecurityLevel::Minimal));
    assert_eq!(after.result.status, Outcome::Timeout, "{:?}", after.result);
    assert_eq!(processes_named("hostile-orphan"), Vec::<u32>::new());
}

#[test]
fn sleeping_past_the_deadline_is_a_timeout() {
    if !as_root() {
        return;
    }
    let after = attack("hostile-sleep", "", None);
    assert_eq!(after.result.status, Outcome::Timeout, "{:?}", after.result);
}

#[test]
fn catching_sigxcpu_does_not_escape_the_cpu_limit() {
    if !as_root() {
        return;
    }
    let after = attack("hostile-sigxcpu", "", None);
    assert_eq!(after.result.status, Outcome::CpuLimit, "{:?}", after.result);
}

#[test]
fn filling_the_disk_stops_at_the_private_directory_cap() {
    if !as_root() {
        return;
    }
    let after = attack("hostile-disk-fill", "", None);
    let detail = assert_not_escaped(&after.result);
    assert!(
        detail.contains("No space left on device") || detail.contains("File too large"),
        "{detail}"
    );
}

#[test]
fn descriptors_are_capped() {
    if !as_root() {
        return;
    }
    let after = attack("hostile-fd-exhaust", "", None);
    let detail = assert_not_escaped(&after.result);
    assert!(detail.contains("Too many open files"), "{detail}");
}

#[test]
fn garbage_on_the_ipc_channel_is_a_protocol_error() {
    if !as_root() {
        return;
    }
    let after = attack("hostile-ipc-garbage", "", None);
    assert_eq!(
        after.result.status,
        Outcome::ProtocolError,
        "{:?}",
        after.result
    );
}

#[test]
fn flooding_stdout_is_capped_and_times_out() {
    if !as_root() {
        return;
    }
    let after = attack("hostile-stdout-flood", "", None);
    assert_eq!(after.result.status, Outcome::Timeout, "{:?}", after.result);
    assert!(
        after.captured.len() <= host_loader::worker::CAPTURE_LIMIT + 1024,
        "captured {} bytes",
        after.captured.len()
    );
    assert!(
        after.captured.len() > 4096,
        "the flood was not captured at all"
    );
}

#[test]
fn the_worker_sees_no_host_environment() {
    if !as_root() {
        return;
    }
    let after = attack("hostile-env", "", None);
    assert_not_escaped(&after.result);
    let env = after.result.output.unwrap()["env"].clone();
    let names: Vec<&str> = env
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(names, ["HOME", "TMPDIR"]);
    for (name, _) in std::env::vars() {
        assert!(
            name == "HOME" || name == "TMPDIR" || env.get(&name).is_none(),
            "host variable {name} leaked"
        );
    }
    // Both name the worker's private directory (made by mkdtemp, named after the host's pid).
    assert_eq!(env["HOME"], env["TMPDIR"]);
    let private = format!("plugin-worker-{}-", std::process::id());
    let tmpdir = env["TMPDIR"].as_str().unwrap();
    assert!(tmpdir.contains(&private), "{tmpdir} is not {private}XXXXXX");
}

#[test]
fn privileged_calls_are_violations() {
    if !as_root() {
        return;
    }
    let after = attack("hostile-setuid", "", None);
    assert_violation(&after.result, "setuid");
}

#[test]
fn a_level_whose_required_layer_is_missing_refuses_to_run() {
    if !as_root() {
        return;
    }
    // word-stats declares Strict. Simulate a machine without seccomp: Strict requires it.
    let plugin = Plugin::open(plugin("word-stats")).unwrap();
    let mut options = worker_options(&plugin);
    options.leave_out = vec!["seccomp".into()];
    let result = Worker::start(&plugin, options)
        .expect_err("must refuse")
        .into_result();
    assert_eq!(result.status, Outcome::Denied, "{result:?}");
    let message = result.error.unwrap();
    assert!(message.contains("`seccomp`"), "{message}");
    assert!(message.contains("security level `strict`"), "{message}");
    assert!(!result.layers.iter().any(|l| l == "seccomp"));

    // Isolated needs everything, the uid drop included.
    let mut options = worker_options(&plugin);
    options.level = Some(SecurityLevel::Isolated);
    options.leave_out = vec!["uid-drop".into()];
    let message = Worker::start(&plugin, options)
        .expect_err("must refuse")
        .into_result()
        .error
        .unwrap();
    assert!(message.contains("`uid-drop`"), "{message}");
    assert!(message.contains("security level `isolated`"), "{message}");

    // A lower level in the options never lowers the plugin's own: still refused.
    let mut options = worker_options(&plugin);
    options.level = Some(SecurityLevel::Minimal);
    options.leave_out = vec!["seccomp".into()];
    assert!(Worker::start(&plugin, options).is_err());

    // Minimal does not require seccomp: a Minimal plugin starts without it and says so.
    let minimal = Plugin::open(integration_tests::plugin("hostile-double-fork")).unwrap();
    let mut options = worker_options(&minimal);
    options.leave_out = vec!["seccomp".into()];
    let worker = Worker::start(&minimal, options).expect("Minimal runs without seccomp");
    assert!(
        !worker.layers().iter().any(|l| l == "seccomp"),
        "{:?}",
        worker.layers()
    );
    assert!(
        worker.layers().iter().any(|l| l == "landlock"),
        "{:?}",
        worker.layers()
    );
    worker.retire();
}

#[test]
fn run_json_shows_the_active_layers_for_every_call() {
    if !as_root() {
        return;
    }
    let out = std::process::Command::new(binary("plugin-host"))
        .args([
            "run",
            plugin("word-stats").to_str().unwrap(),
            "analyze",
            "--jsonl",
            "--json",
        ])
        .args(["--input", stories_path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 146);
    for line in &lines {
        let layers: Vec<&str> = line["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        for layer in [
            "uid-drop",
            "namespaces",
            "no-new-privs",
            "landlock",
            "seccomp",
            "watchdog",
        ] {
            assert!(layers.contains(&layer), "{layer} missing in {line}");
        }
        assert!(line["landlock_abi"].as_u64().unwrap() >= 1, "{line}");
    }
}

/// The pid of a worker of `host`: a child (the launcher forks workers with `CLONE_PARENT`)
/// that has dropped to the unprivileged uid and one of whose threads is asleep in
/// `clock_nanosleep`/`nanosleep`, i.e. inside `hostile-sleep`'s call.
fn sleeping_worker_of(host: u32) -> Option<i32> {
    let uid = format!("Uid:\t{}\t", 65534);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces) in parentheses.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(host) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if !status.contains(&uid) {
            continue;
        }
        let asleep = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|task| {
                let call = std::fs::read_to_string(task.path().join("syscall")).unwrap_or_default();
                matches!(call.split_whitespace().next(), Some("230" | "35"))
            });
        if asleep {
            return Some(pid);
        }
    }
    None
}

/// The kernel clears the death-of-parent signal when the worker drops its uid; it is armed
/// again after the drop, so a host killed in the middle of a call takes its worker with it
/// (only the host's watchdog would otherwise end `hostile-sleep`'s hour-long sleep).
#[test]
fn a_worker_dies_with_its_host_even_in_the_middle_of_a_call() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};
    if !as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("story.json");
    std::fs::write(&input, first_story()).unwrap();
    let mut host = std::process::Command::new(binary("plugin-host"))
        .args(["run", plugin("hostile-sleep").to_str().unwrap(), "analyze"])
        .args(["--input", input.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Nothing to block on from here: poll /proc until the worker is in its call (its wall
    // clock is 1 s, so this takes a few milliseconds or fails the test).
    let found_by = Instant::now() + Duration::from_secs(5);
    let worker = loop {
        if let Some(pid) = sleeping_worker_of(host.id()) {
            break pid;
        }
        assert!(
            Instant::now() < found_by,
            "no worker of the host went to sleep"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, worker, 0) };
    assert!(raw >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: the descriptor was just returned by pidfd_open and is owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    host.kill().unwrap();
    host.wait().unwrap();
    // The worker must be gone long before its hour of sleep; 2 s is far beyond what the
    // kernel needs to deliver SIGKILL and far below the sleep.
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&pidfd),
        nix::poll::PollFlags::POLLIN,
    )];
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(2000u16)).unwrap();
    if ready == 0 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(worker),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert_eq!(ready, 1, "worker {worker} outlived its killed host");
}

#[test]
fn threads_and_processes_are_capped_by_the_task_limit() {
    if !as_root() {
        return;
    }
    let plugin = Plugin::open(plugin("hostile-thread-bomb")).unwrap();
    let bomb = |max_tasks: u64| {
        let mut options = worker_options(&plugin);
        options.max_tasks = max_tasks;
        let mut worker = Worker::start(&plugin, options).unwrap();
        let result = worker.call("analyze", &first_story());
        let layers = worker.layers().to_vec();
        worker.retire();
        (result, layers)
    };
    let (tight, layers) = bomb(16);
    if !layers.iter().any(|l| l == "cgroup-pids") {
        integration_tests::skip(
            "no pids cgroup hierarchy on this machine (layer cgroup-pids absent)",
        );
        return;
    }
    // The plugin sees EAGAIN and says so; the worker itself (its main thread) counts too.
    assert_not_escaped(&tight);
    let output = tight.output.unwrap();
    let spawned = output["spawned"].as_u64().unwrap();
    assert!((1..16).contains(&spawned), "{output}");
    assert!(
        output["refused"]
            .as_str()
            .unwrap()
            .contains("Resource temporarily unavailable"),
        "{output}"
    );
    // The default cap is wider but still a cap.
    let (roomy, _) = bomb(host_loader::worker::DEFAULT_MAX_TASKS);
    let output = roomy.output.unwrap();
    let spawned = output["spawned"].as_u64().unwrap();
    assert!(
        spawned > 16 && spawned < host_loader::worker::DEFAULT_MAX_TASKS,
        "{output}"
    );
    word_stats_still_works();
}

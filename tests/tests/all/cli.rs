//! The `plugin-host` command line: inspect and run, outcomes and exit codes.

use integration_tests::{
    binary, first_story_lines, path, plugin, stories_path, tmpdir_for_workers,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Command, Output};

fn plugin_host(args: &[&str], cwd: &Path) -> Output {
    Command::new(binary("plugin-host"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// Runs `hook` of `name` on the first story, returning the JSON result and exit code.
fn run_first_story(name: &str, cwd: &Path) -> (Value, Option<i32>) {
    let story = std::fs::read_to_string(stories_path())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let input = cwd.join("story.json");
    std::fs::write(&input, story).unwrap();
    let out = plugin_host(
        &[
            "run",
            path(&plugin(name)),
            "analyze",
            "--input",
            path(&input),
            "--json",
        ],
        cwd,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let result = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {stdout:?} {:?}", out.stderr));
    (result, out.status.code())
}

#[test]
fn inspect_prints_manifest_entry_points_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let so = plugin("word-stats");
    let out = plugin_host(&["inspect", path(&so), "--json"], dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sha = Sha256::digest(std::fs::read(&so).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert_eq!(report["sha256"], sha);
    assert_eq!(report["manifest"]["name"], "word-stats");
    assert_eq!(report["manifest"]["security_level"], "strict");
    assert_eq!(report["manifest"]["abi"]["sdk_abi_version"], 1);
    let entry = &report["entry_points"][0];
    assert_eq!(entry["hook"], "analyze");
    assert_eq!(entry["symbol"], "__plugin_hook_analyze");
    assert_eq!(entry["exported"], true);
    assert_eq!(entry["callable"], true);
    assert_eq!(entry["signature_hash"], entry["expected_hash"]);

    let human = plugin_host(&["inspect", path(&so)], dir.path());
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(
        text.contains("word-stats 0.1.0") && text.contains(&sha) && text.contains("[ok]"),
        "{text}"
    );
}

#[test]
fn inspect_of_a_non_plugin_is_a_clear_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let libz = Path::new("/usr/lib/x86_64-linux-gnu/libz.so.1");
    if !libz.exists() {
        integration_tests::skip(&format!("{} is not on this machine", libz.display()));
        return;
    }
    let out = plugin_host(&["inspect", path(libz)], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("libz.so.1") && stderr.contains("not a plugin: no manifest section"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));

    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "hello").unwrap();
    let out = plugin_host(&["inspect", path(&text_file)], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an ELF file"));

    let out = plugin_host(&["inspect", "/nonexistent/plugin.so"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/plugin.so"));

    // A truncated plugin: the stable code on stderr, and with --json an error object on
    // stdout shaped like the HTTP API's.
    let truncated = dir.path().join("truncated.so");
    let bytes = std::fs::read(plugin("word-stats")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let out = plugin_host(&["inspect", path(&truncated), "--json"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = error["error"]["reason"].as_str().unwrap();
    assert_eq!(error["error"]["code"], "not_a_plugin", "{error}");
    assert!(reason.starts_with("ELF_"), "{error}");
    assert!(stderr.contains(&format!("[{reason}]")), "{stderr}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("truncated.so"),
        "{error}"
    );
    // Every command's --json error has that shape: a missing data dir, say.
    let missing = dir.path().join("no-such-data-dir");
    let out = plugin_host(
        &["--data-dir", path(&missing), "report", "--json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "data_dir", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such data dir"),
        "{error}"
    );
}

#[test]
fn text_from_a_plugin_file_reaches_the_terminal_escaped() {
    // word-stats with an escape sequence (clear screen) in its manifest's `rustc` field: the
    // JSON escape `\u001b` in place of `rustc `, same length, so the file stays well-formed.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(plugin("word-stats")).unwrap();
    let field = b"\"rustc\":\"rustc ";
    let at = bytes
        .windows(field.len())
        .position(|w| w == field)
        .expect("the manifest names its rustc");
    let value = at + b"\"rustc\":\"".len();
    bytes[value..value + 6].copy_from_slice(b"\\u001b");
    let patched = dir.path().join("libpatched.so");
    std::fs::write(&patched, &bytes).unwrap();
    for command in ["inspect", "validate"] {
        let out = plugin_host(&[command, path(&patched)], dir.path());
        assert!(
            !out.stdout.contains(&0x1b),
            "{command}: a raw ESC was printed"
        );
        if command == "inspect" {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains("built with") && stdout.contains("\\u001b"),
                "{stdout}"
            );
        }
    }
    // A file name with an escape sequence, quoted in an error on stderr.
    let named = dir.path().join("evil\u{1b}]0;owned\u{7}.so");
    std::fs::write(&named, b"not elf").unwrap();
    let out = plugin_host(&["inspect", path(&named)], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !out.stderr.contains(&0x1b),
        "a raw ESC was printed on stderr"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("evil\\u001b]0;owned\\u0007.so"));
}

#[test]
fn inspect_never_runs_the_constructor_but_run_does_in_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("hostile-ctor.marker");
    let out = plugin_host(
        &["inspect", path(&plugin("hostile-ctor")), "--json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!marker.exists(), "inspect ran the plugin's constructor");

    let (result, code) = run_first_story("hostile-ctor", dir.path());
    assert_eq!(code, Some(0), "{result}");
    assert_eq!(result["status"], "ok");
    // The constructor ran in the worker: it wrote its marker in the worker's working directory,
    // which is the worker's private temporary directory, not the host's (removed afterwards).
    assert_eq!(result["output"]["constructor_ran"], true);
    let contents = result["output"]["marker"].as_str().unwrap();
    assert!(contents.starts_with("constructor ran in pid"), "{contents}");
    assert!(
        !marker.exists(),
        "the constructor wrote into the host's directory"
    );
    let worker_pid = result["worker_pid"].as_u64().unwrap();
    assert_ne!(
        worker_pid,
        u64::from(std::process::id()),
        "the constructor ran in a separate worker process"
    );
}

/// A plugin the policy denies never gets a worker: `run` decides before anything starts, so
/// its load-time constructor cannot run anywhere (the host process never maps the file).
#[test]
fn a_denied_plugin_gets_no_worker_so_its_constructor_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "sdk_versions = \">=9\"\n").unwrap();
    let story = dir.path().join("story.json");
    std::fs::write(
        &story,
        serde_json::to_vec(&integration_tests::stories()[0]).unwrap(),
    )
    .unwrap();
    let out = plugin_host(
        &[
            "run",
            path(&plugin("hostile-ctor")),
            "analyze",
            "--input",
            path(&story),
            "--policy",
            path(&policy),
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "denied", "{result}");
    assert!(
        result["error"].as_str().unwrap().contains("sdk"),
        "{result}"
    );
    assert!(
        result.get("worker_pid").is_none(),
        "a worker started: {result}"
    );
    assert_eq!(result["layers"], Value::Array(vec![]), "{result}");
    assert!(!dir.path().join("hostile-ctor.marker").exists());
}

#[test]
fn hostile_plugins_end_with_the_right_outcome_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (spin, code) = run_first_story("hostile-spin", dir.path());
    assert_eq!(
        (spin["status"].as_str(), code),
        (Some("timeout"), Some(1)),
        "{spin}"
    );
    assert!(spin["usage"]["wall_ms"].as_u64().unwrap() >= 1000);

    let (alloc, code) = run_first_story("hostile-alloc", dir.path());
    assert_eq!(
        (alloc["status"].as_str(), code),
        (Some("memory_limit"), Some(1)),
        "{alloc}"
    );

    let (panic, code) = run_first_story("hostile-panic", dir.path());
    assert_eq!(
        (panic["status"].as_str(), code),
        (Some("panic"), Some(1)),
        "{panic}"
    );
    assert_eq!(
        panic["error"],
        "hostile-panic refuses to analyse \"The Frogs and the Ox\""
    );

    let (segv, code) = run_first_story("hostile-segv", dir.path());
    assert_eq!(
        (segv["status"].as_str(), code),
        (Some("crashed"), Some(1)),
        "{segv}"
    );
    assert!(
        segv["error"].as_str().unwrap().contains("SIGSEGV"),
        "{segv}"
    );
}

#[test]
fn jsonl_gives_each_line_its_own_outcome_on_a_fresh_worker() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("three.jsonl");
    std::fs::write(&input, first_story_lines(3, "\n\n")).unwrap();
    let out = plugin_host(
        &[
            "run",
            path(&plugin("hostile-segv")),
            "analyze",
            "--input",
            path(&input),
            "--jsonl",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        3,
        "blank lines are skipped, every story gets a line"
    );
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["status"], "crashed");
        // The story's line in the file, blank lines counted (1, 3, 5).
        assert_eq!(line["line"], 2 * i + 1);
    }
}

/// Each worker's private directory is made with `mkdtemp` in `$TMPDIR`, and its memory cgroup
/// is named after the host's pid. A host that exited (here after a run whose every call crashed,
/// so every worker but the last was retired in the background) leaves neither behind: a
/// leftover directory or cgroup would pile up, and once collided with a later host's.
#[test]
fn a_finished_run_leaves_no_worker_directory_or_cgroup_behind() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tmpdir_for_workers(dir.path(), "tmp");
    let input = dir.path().join("five.jsonl");
    std::fs::write(&input, first_story_lines(5, "\n")).unwrap();
    for (name, code) in [("hostile-segv", 1), ("word-stats", 0)] {
        let child = Command::new(binary("plugin-host"))
            .args(["run", path(&plugin(name)), "analyze", "--jsonl", "--input"])
            .arg(&input)
            .env("TMPDIR", &tmp)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{name}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().count(), 5, "{name}: {stdout}");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{name}: left in TMPDIR: {left:?}");
        let cgroups = [
            "/sys/fs/cgroup/plugin-host",
            "/sys/fs/cgroup/memory/plugin-host",
        ];
        let Some(parent) = cgroups.iter().map(Path::new).find(|p| p.is_dir()) else {
            integration_tests::skip(
                "the cgroup part: no plugin-host memory cgroup on this machine",
            );
            continue;
        };
        let prefix = format!("worker-{pid}-");
        let left: Vec<_> = std::fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        assert!(left.is_empty(), "{name}: cgroups left: {left:?}");
    }
}

#[test]
fn bad_usage_exits_2_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    // Files that never end or never open: bounded, and refused or read as empty, never a hang.
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    for (args, expected) in [
        (
            vec!["validate", "--manifest", "/dev/zero"],
            "larger than the 1 MiB manifest limit",
        ),
        (
            vec![
                "run",
                path(&plugin("word-stats")),
                "analyze",
                "--config",
                "/dev/zero",
            ],
            "larger than the 1 MiB configuration limit",
        ),
        (vec!["inspect", path(&fifo)], "the file is empty"),
    ] {
        let out = plugin_host(&args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let out = plugin_host(
        &["run", path(&plugin("word-stats")), "summarize"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("no entry point `summarize`") && stderr.contains("analyze"),
        "{stderr}"
    );

    let out = plugin_host(
        &[
            "run",
            path(&plugin("word-stats")),
            "analyze",
            "--input",
            "/nonexistent.jsonl",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.jsonl"));

    let out = plugin_host(&["frobnicate"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn invalid_input_is_a_plugin_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.json");
    std::fs::write(&input, "{\"title\": 5}").unwrap();
    let out = plugin_host(
        &[
            "run",
            path(&plugin("word-stats")),
            "analyze",
            "--input",
            path(&input),
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "plugin_error");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("not a valid JSON Story"),
        "{result}"
    );
    assert!(out.stderr.is_empty(), "no hint for one JSON value: {out:?}");

    // An error message as long as the input it quotes is cut, saying by how much: it is kept,
    // stored and printed, so it must not be as large as a frame.
    std::fs::write(
        &input,
        serde_json::json!({ "id": "A".repeat(300_000) }).to_string(),
    )
    .unwrap();
    let out = plugin_host(
        &[
            "run",
            path(&plugin("lifecycle-probe")),
            "analyze",
            "--input",
            path(&input),
            "--json",
        ],
        dir.path(),
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "plugin_error");
    let error = result["error"].as_str().unwrap();
    assert!(error.len() < 70_000, "{} bytes", error.len());
    assert!(
        error.ends_with("more bytes cut)"),
        "{}",
        &error[error.len() - 60..]
    );

    // The stories file without --jsonl: one call on the whole file fails, and a hint says why.
    let out = plugin_host(
        &[
            "run",
            path(&plugin("word-stats")),
            "analyze",
            "--input",
            path(&stories_path()),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the input is 146 lines of JSON, passed as one input; add --jsonl"),
        "{stderr}"
    );
}

/// The README's main job (`scripts/main-job.sh`), run on the debug build: every well-behaved
/// example installed in a fresh data dir, `analyze` dispatched over the 146 stories, one `ok`
/// per plugin per story.
#[test]
fn the_main_job_script_gives_one_ok_per_plugin_per_story() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(integration_tests::workspace_root().join("scripts/main-job.sh"))
        .env("TARGET", binary("plugin-host").parent().unwrap())
        .env("STORIES", stories_path())
        .env("PLUGIN_HOST_DATA_DIR", data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stories = integration_tests::stories().len();
    let plugins = 8;
    let ok = stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("ok"))
        .count();
    assert_eq!(ok, stories * plugins, "{stdout}");
    let summary = format!(
        "{plugins} plugins ({plugins} enabled, 0 disabled, 0 quarantined), {} calls, 0 violations",
        stories * plugins
    );
    assert!(stdout.contains(&summary), "{stdout}");
}

//! Shared helpers for the integration tests: building the example plugins and the binaries
//! once per test process, locating them, and reading the real stories.
//!
//! The examples are `cdylib` crates; cargo does not build them for another package's tests,
//! so the first test that needs them runs `cargo build` for them (cargo's own lock makes
//! concurrent test binaries wait for each other; a second build is a no-op).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every example plugin crate.
pub const EXAMPLES: &[&str] = &[
    "word-stats",
    "hostile-spin",
    "hostile-alloc",
    "hostile-panic",
    "hostile-segv",
    "hostile-ctor",
    "story-hooks-plugin",
    "lifecycle-probe",
    "story-sanitizer",
    "greedy-exfil",
    "feed-fetcher",
    "threads-ok",
    "hostile-fork-bomb",
    "hostile-net",
    "hostile-read-secrets",
    "hostile-write-outside",
    "hostile-exec",
    "hostile-ptrace",
    "hostile-kill-parent",
    "hostile-double-fork",
    "hostile-sleep",
    "hostile-thread-bomb",
    "hostile-sigxcpu",
    "hostile-disk-fill",
    "hostile-fd-exhaust",
    "hostile-ipc-garbage",
    "hostile-stdout-flood",
    "hostile-env",
    "hostile-setuid",
    "story-archive",
    "link-checker",
    "hostile-path-escape",
    "hostile-op-flood",
    "hostile-http-flood",
    "hostile-imports-net",
    "hostile-raw-syscall",
    "hostile-execstack",
    "hostile-bad-signature",
];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The cargo target directory (`$CARGO_TARGET_DIR`, else `target/` in the workspace).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

/// A `cargo` command (the one running the tests) in the workspace root.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()));
    command.current_dir(workspace_root());
    command
}

/// The directory holding the built binaries and plugins (debug profile).
pub fn artifacts() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace_root())
            .args(["build", "--quiet", "-p", "host-loader"]);
        for example in EXAMPLES {
            command.args(["-p", example]);
        }
        let status = command
            .status()
            .expect("cannot run cargo to build the example plugins");
        assert!(
            status.success(),
            "building the example plugins failed: {status}"
        );
        target_dir().join("debug")
    })
}

/// Says that the running test skips (all or part of) what it checks, and why. Written to the
/// process's stderr directly, past libtest's output capture, so a CI log shows every skip.
pub fn skip(reason: &str) {
    use std::io::Write;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// `p` as a command-line argument (every test path is UTF-8).
pub fn path(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Path of an example plugin's `.so`, e.g. `plugin("word-stats")`.
pub fn plugin(name: &str) -> PathBuf {
    artifacts().join(format!("lib{}.so", name.replace('-', "_")))
}

/// Path of a built binary (`plugin-host`, `plugin-worker`).
pub fn binary(name: &str) -> PathBuf {
    artifacts().join(name)
}

/// The stories file shipped beside the repository (`../shared/data`).
pub fn stories_path() -> PathBuf {
    let candidates = [
        workspace_root().join("../shared/data/aesop-for-children.jsonl"),
        workspace_root().join("shared/data/aesop-for-children.jsonl"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("stories not found; looked at {candidates:?}"))
}

/// Every story, one JSON value per line.
pub fn stories() -> Vec<serde_json::Value> {
    std::fs::read_to_string(stories_path())
        .expect("cannot read the stories")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("story line is JSON"))
        .collect()
}

/// The first `count` lines of the stories file, joined by `separator` (a JSON Lines input).
pub fn first_story_lines(count: usize, separator: &str) -> String {
    let text = std::fs::read_to_string(stories_path()).expect("cannot read the stories");
    text.lines().take(count).collect::<Vec<_>>().join(separator)
}

/// A directory `name` under `parent` that a worker's uid can search (mode 0711, like `/tmp`),
/// for a host's `TMPDIR`: the workers' private directories are made in it.
pub fn tmpdir_for_workers(parent: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).expect("cannot make the TMPDIR");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
        .expect("cannot make the TMPDIR searchable");
    dir
}

/// Worker options for `plugin` as the CLI would use them, with the built worker executable.
pub fn worker_options(plugin: &host_loader::Plugin) -> host_loader::WorkerOptions {
    let mut options = host_loader::WorkerOptions::new(plugin.limits(None));
    options.worker_exe = Some(binary("plugin-worker"));
    options
}

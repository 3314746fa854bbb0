//! `plugin-host`: inspect, validate and run plugins from the command line, manage the installed
//! plugins of a data dir, and serve the HTTP API.
//!
//! Exit codes: 0 success (or `allow`); 1 the plugin was denied (for `inspect`: has an error
//! finding) or a call did not end `ok`; 2 bad usage or unreadable input (plugin, input or
//! policy; for `inspect`: a file that is not a plugin). Every command takes `--json` for
//! machine-readable output on stdout. The service commands (`install` ... `serve`) are thin
//! over `host_loader::service::Host`; their `--json` output is the same types the HTTP API
//! answers with.

mod service;
mod terminal;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use host_loader::inspect::{Severity, inspect_file};
use host_loader::outcome::{CallResult, Outcome};
use host_loader::policy::Policy;
use host_loader::policy::engine::{Decision, evaluate};
use host_loader::{Plugin, Pool, PoolConfig, Report, WorkerOptions};
use plugin_manifest::SecurityLevel;
use plugin_manifest::permission::CATALOG;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "plugin-host",
    version,
    about = "Inspect and run untrusted native plugins in confined worker processes"
)]
struct Cli {
    /// The data dir of the service commands: installed plugins, audit store, API token,
    /// optional policy.toml. Default: $PLUGIN_HOST_DATA_DIR, else $XDG_DATA_HOME/plugin-host,
    /// else ~/.local/share/plugin-host.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read plugins' manifests, entry points, hashes and static findings from the files,
    /// without running them (exit 0 fine, 1 a plugin has an error finding, 2 a file is not a
    /// readable plugin).
    Inspect {
        /// Plugin files (`.so`), or directories searched recursively for `*.so` files.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decide whether a plugin may run under a policy, with every reason (exit 0 allow, 1 deny).
    Validate {
        /// The plugin (`.so`), or with `--manifest` a manifest as JSON.
        file: PathBuf,
        /// FILE is a manifest as JSON (what `inspect --json` prints under `manifest`), not a
        /// `.so`: decide on the manifest alone, without a static report.
        #[arg(long)]
        manifest: bool,
        /// Policy file (TOML). Without it: level standard, no extra roots or hosts.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The operator's level (the plugin runs at the stricter of this and its own request).
        #[arg(long)]
        level: Option<SecurityLevel>,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the permission catalog with each kind's risk, scope syntax and enforcement.
    Permissions {
        /// Print the catalog as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run one hook of a plugin in a confined worker (after the same decision as `validate`).
    Run {
        /// The plugin (`.so`).
        file: PathBuf,
        /// The hook to call, e.g. `analyze`.
        hook: String,
        /// Input file, or `-` for stdin. Without it the input is empty.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Call the hook once per non-empty input line, in one warm worker, printing one result
        /// line per input line.
        #[arg(long)]
        jsonl: bool,
        /// Print results as JSON.
        #[arg(long)]
        json: bool,
        /// The operator's level (the plugin runs at the stricter of this and its own request).
        #[arg(long)]
        level: Option<SecurityLevel>,
        /// Policy file (TOML), as for `validate`.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// JSON file passed to the plugin's `init` entry point (default `{}`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The plugin's data directory: its relative `fs.*` paths and its SQLite store are
        /// there (default: the current directory).
        #[arg(long, value_name = "DIR")]
        plugin_data: Option<PathBuf>,
    },
    #[command(flatten)]
    Service(service::ServiceCommand),
}

impl Command {
    /// Whether `--json` was given: errors are then also printed as JSON on stdout.
    fn json(&self) -> bool {
        match self {
            Command::Inspect { json, .. }
            | Command::Validate { json, .. }
            | Command::Permissions { json }
            | Command::Run { json, .. } => *json,
            Command::Service(command) => command.json(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let data_dir = cli.data_dir;
    let json = cli.command.json();
    let result = match cli.command {
        Command::Inspect { paths, json } => inspect(&paths, json),
        Command::Validate {
            file,
            manifest: true,
            policy,
            level,
            json,
        } => service::validate_manifest(&file, policy.as_deref(), level, json),
        Command::Validate {
            file,
            manifest: false,
            policy,
            level,
            json,
        } => validate(&file, policy.as_deref(), level, json),
        Command::Service(command) => service::run(command, data_dir),
        Command::Permissions { json } => permissions(json),
        Command::Run {
            file,
            hook,
            input,
            jsonl,
            json,
            level,
            policy,
            config,
            plugin_data,
        } => run(&RunArgs {
            file: &file,
            hook: &hook,
            input: input.as_deref(),
            jsonl,
            json,
            level,
            policy: policy.as_deref(),
            config: config.as_deref(),
            plugin_data: plugin_data.as_deref(),
        }),
    };
    // Workers retired in the background (after a failed call, say) are reaped, and their
    // cgroups and temporary directories removed, before the process and its reaper thread end.
    host_loader::worker::finish_background_work(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => code,
        // The reader of stdout went away (`plugin-host report | head`): not an error worth a
        // message, and nothing is lost (audit records are committed before they are printed).
        Err(error)
            if error.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            let (code, reason) = error_codes(&error);
            let shown = terminal::escaped(&format!("{error:#}"));
            match reason {
                Some(reason) => eprintln!("plugin-host: error [{reason}]: {shown}"),
                None => eprintln!("plugin-host: error: {shown}"),
            }
            if json {
                // The same shape as the HTTP API's error bodies.
                let body = host_loader::api::error::body(code, &format!("{error:#}"), reason);
                let _ = writeln!(terminal::stdout(), "{body}");
            }
            ExitCode::from(2)
        }
    }
}

/// The stable code of a failed command (as in the HTTP API: `not_found`, `not_a_plugin`,
/// `bad_policy`, ...), and for a file that is not a plugin the inspection's own code
/// (`ELF_TRUNCATED`, ...).
fn error_codes(error: &anyhow::Error) -> (&'static str, Option<&'static str>) {
    for cause in error.chain() {
        if let Some(service) = cause.downcast_ref::<host_loader::service::ServiceError>() {
            return (service.code(), service.reason());
        }
        if let Some(error) = cause.downcast_ref::<host_loader::Error>() {
            return match error {
                host_loader::Error::Inspect { error, .. } => ("not_a_plugin", Some(error.code())),
                host_loader::Error::Io { .. } => ("unreadable", None),
                _ => ("worker", None),
            };
        }
        if cause.is::<host_loader::policy::PolicyError>() {
            return ("bad_policy", None);
        }
    }
    ("error", None)
}

fn open(file: &std::path::Path) -> Result<Plugin> {
    Ok(Plugin::open(file)?)
}

fn inspect(paths: &[PathBuf], json: bool) -> Result<ExitCode> {
    let single = paths.len() == 1 && paths.first().is_some_and(|p| !p.is_dir());
    if single {
        let file = paths.first().map(PathBuf::as_path).unwrap_or(Path::new(""));
        let report = inspect_file(file)?;
        let mut out = terminal::stdout();
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            print_report(&mut out, &report)?;
        }
        return Ok(exit_for(&report));
    }
    let files = expand(paths);
    let progress = Progress::new(files.len());
    let mut out = terminal::stdout();
    let mut entries = Vec::new();
    let (mut not_plugins, mut denied) = (0usize, 0usize);
    for (index, file) in files.iter().enumerate() {
        progress.show(index, file);
        let result = inspect_file(file);
        match &result {
            Ok(report) if report.blocking_findings().next().is_some() => denied += 1,
            Ok(_) => {}
            Err(_) => not_plugins += 1,
        }
        if json {
            entries.push(match &result {
                Ok(report) => serde_json::json!({
                    "path": file,
                    "status": "plugin",
                    "report": report,
                }),
                Err(error) => serde_json::json!({
                    "path": file,
                    "status": if matches!(error, host_loader::Error::Io { .. }) { "unreadable" } else { "not_a_plugin" },
                    "code": error_code(error),
                    "message": error_message(error),
                }),
            });
        } else {
            progress.clear();
            match &result {
                Ok(report) => {
                    let count = |severity| {
                        report
                            .findings
                            .iter()
                            .filter(|f| f.severity == severity)
                            .count()
                    };
                    let codes: Vec<&str> = report
                        .findings
                        .iter()
                        .filter(|f| f.severity >= Severity::Warning)
                        .map(|f| f.code)
                        .collect();
                    writeln!(
                        out,
                        "{}: plugin {} {}: {} error, {} warning finding(s){}",
                        file.display(),
                        report.manifest.info.name,
                        report.manifest.info.version,
                        count(Severity::Error),
                        count(Severity::Warning),
                        if codes.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", codes.join(", "))
                        }
                    )?;
                }
                Err(error) => writeln!(
                    out,
                    "{}: {}: {}",
                    file.display(),
                    error_code(error),
                    error_message(error)
                )?,
            }
        }
    }
    progress.clear();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
    } else {
        writeln!(
            out,
            "{} file(s): {} plugin(s), {} denied by static findings, {} not a plugin or unreadable",
            files.len(),
            files.len() - not_plugins,
            denied,
            not_plugins
        )?;
    }
    Ok(if not_plugins > 0 {
        ExitCode::from(2)
    } else if denied > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// 1 if the report has an error finding (the plugin would be denied), else 0.
fn exit_for(report: &Report) -> ExitCode {
    if report.blocking_findings().next().is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The stable code of an inspection failure.
fn error_code(error: &host_loader::Error) -> &'static str {
    match error {
        host_loader::Error::Inspect { error, .. } => error.code(),
        host_loader::Error::Io { .. } => "UNREADABLE",
        _ => "ERROR",
    }
}

/// An inspection failure's message without the path (printed beside it).
fn error_message(error: &host_loader::Error) -> String {
    match error {
        host_loader::Error::Inspect { error, .. } => error.to_string(),
        host_loader::Error::Io { error, .. } => error.to_string(),
        other => other.to_string(),
    }
}

/// The files named by `paths`: files as given, directories searched recursively for shared
/// objects (`*.so`, `*.so.*`; symbolic links inside directories are skipped, their targets
/// are found by name). A directory that cannot be read is listed itself, so that it is
/// reported unreadable beside the rest instead of ending the scan.
fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            out.push(dir.to_path_buf());
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                walk(&path, out);
            } else if kind.is_file() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".so") || name.contains(".so.") {
                    out.push(path);
                }
            }
        }
    }
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut files);
        } else {
            files.push(path.clone());
        }
    }
    files
}

/// A one-line `[n/total] file` counter on stderr, shown only when stderr is a terminal and
/// there are enough files for it to matter.
struct Progress {
    total: usize,
    visible: bool,
}

impl Progress {
    /// Fewer files than this print no progress.
    const MIN_FILES: usize = 10;

    fn new(total: usize) -> Progress {
        use std::io::IsTerminal;
        Progress {
            total,
            visible: total >= Self::MIN_FILES && std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, index: usize, file: &Path) {
        if self.visible {
            let width = 30usize;
            let done = (index * width).checked_div(self.total).unwrap_or(0);
            eprint!(
                "\r\x1b[2K[{}{}] {:>5}/{} {}",
                "#".repeat(done),
                " ".repeat(width - done),
                index + 1,
                self.total,
                terminal::escaped(&file.display().to_string())
            );
        }
    }

    fn clear(&self) {
        if self.visible {
            eprint!("\r\x1b[2K");
        }
    }
}

fn print_report(out: &mut impl Write, report: &Report) -> Result<()> {
    let m = &report.manifest;
    writeln!(out, "plugin      {} {}", m.info.name, m.info.version)?;
    writeln!(
        out,
        "file        {} ({} bytes)",
        report.path.display(),
        report.size
    )?;
    writeln!(out, "sha256      {}", report.sha256)?;
    writeln!(out, "description {}", m.info.description)?;
    writeln!(out, "author      {}", m.info.author)?;
    writeln!(out, "level       {}", m.info.security_level)?;
    let permissions: Vec<String> = m.info.permissions.iter().map(|p| p.to_string()).collect();
    writeln!(
        out,
        "permissions {}",
        if permissions.is_empty() {
            "none".to_string()
        } else {
            permissions.join(", ")
        }
    )?;
    let limits = serde_json::to_string(&m.info.limits)?;
    writeln!(out, "limits      {limits}")?;
    writeln!(
        out,
        "built with  plugin-sdk {} (ABI {}), {}, {}, panic={}",
        m.abi.sdk_version, m.abi.sdk_abi_version, m.abi.rustc, m.abi.target, m.abi.panic
    )?;
    writeln!(out, "entry points")?;
    for entry in &report.entry_points {
        let state = match (entry.exported, entry.is_function, entry.callable) {
            (false, _, _) => "MISSING",
            (true, false, _) => "NOT A FUNCTION",
            (true, true, false) => "SIGNATURE MISMATCH",
            (true, true, true) => "ok",
        };
        writeln!(
            out,
            "  {:<12} {} {}  hash {}  [{state}]",
            entry.hook, entry.symbol, entry.signature, entry.signature_hash
        )?;
    }
    print_findings(
        out,
        report
            .findings
            .iter()
            .map(|f| (f.severity, f.code, f.message.as_str())),
    )
}

/// The `findings` lines of `inspect` and `validate`: severity, code, message.
fn print_findings<'a>(
    out: &mut impl Write,
    findings: impl ExactSizeIterator<Item = (Severity, &'a str, &'a str)>,
) -> Result<()> {
    if findings.len() == 0 {
        writeln!(out, "findings    none")?;
        return Ok(());
    }
    writeln!(out, "findings")?;
    for (severity, code, message) in findings {
        writeln!(out, "  {:<8} {code:<26} {message}", severity.as_str())?;
    }
    Ok(())
}

pub(crate) fn load_policy(path: Option<&std::path::Path>) -> Result<Policy> {
    Ok(match path {
        Some(path) => Policy::load(path)?,
        None => Policy::default(),
    })
}

fn validate(
    file: &std::path::Path,
    policy: Option<&std::path::Path>,
    level: Option<SecurityLevel>,
    json: bool,
) -> Result<ExitCode> {
    let policy = load_policy(policy)?;
    let plugin = open(file)?;
    let decision = evaluate(plugin.manifest(), Some(plugin.report()), &policy, level);
    let mut out = terminal::stdout();
    if json {
        let mut value = serde_json::to_value(&decision)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("file".into(), file.display().to_string().into());
            object.insert("sha256".into(), plugin.report().sha256.clone().into());
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        print_decision(&mut out, &plugin, &decision)?;
    }
    Ok(if decision.allows() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_decision(out: &mut impl Write, plugin: &Plugin, decision: &Decision) -> Result<()> {
    let info = &plugin.manifest().info;
    let verdict = if decision.allows() { "ALLOW" } else { "DENY" };
    writeln!(out, "plugin      {} {}", info.name, info.version)?;
    writeln!(out, "decision    {verdict}")?;
    writeln!(
        out,
        "level       {} ({})",
        decision.level, decision.level_reason
    )?;
    let l = &decision.limits;
    writeln!(
        out,
        "limits      memory {} MiB, cpu {} ms, wall {} ms, file ops {}, net requests {}, db queries {}, max file {} KiB",
        l.memory_bytes / (1024 * 1024),
        l.cpu_ms,
        l.wall_ms,
        l.file_ops,
        l.net_requests,
        l.db_queries,
        l.max_file_size_bytes / 1024
    )?;
    let rules = &decision.rules;
    writeln!(
        out,
        "level rules permissions: {} (at most {}); file extensions: {}; layers required: {}",
        rules.allowed_permissions,
        rules.max_permissions,
        if rules.allowed_extensions.is_empty() {
            "none".to_string()
        } else {
            rules.allowed_extensions.join(", ")
        },
        rules.required_layers.join(", ")
    )?;
    let permissions: Vec<String> = info.permissions.iter().map(|p| p.to_string()).collect();
    writeln!(
        out,
        "permissions {}",
        if permissions.is_empty() {
            "none".to_string()
        } else {
            permissions.join(", ")
        }
    )?;
    print_findings(
        out,
        decision
            .findings
            .iter()
            .map(|f| (f.severity, f.code, f.message.as_str())),
    )
}

pub(crate) fn permissions(json: bool) -> Result<ExitCode> {
    let mut out = terminal::stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(CATALOG)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<16} {:<7} {:<12} {:<36} description",
        "permission", "risk", "scope", "enforced by"
    )?;
    for kind in CATALOG {
        let risk = serde_json::to_value(kind.risk)?;
        let scope = serde_json::to_value(kind.scope)?;
        writeln!(
            out,
            "{:<16} {:<7} {:<12} {:<36} {}",
            kind.id,
            risk.as_str().unwrap_or(""),
            scope.as_str().unwrap_or(""),
            kind.enforced_by,
            kind.description
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Largest input of `run`, `invoke` and `dispatch` (a file or stdin; with `--jsonl` each line
/// is one call, and each call's input is bounded by the frame size on top).
const MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;
/// Largest `--config` or `validate --manifest` file.
const MAX_SMALL_FILE_BYTES: u64 = 1024 * 1024;

pub(crate) fn read_input(input: Option<&std::path::Path>) -> Result<Vec<u8>> {
    use host_loader::bounded;
    Ok(match input {
        None => Vec::new(),
        Some(path) if path.as_os_str() == "-" => {
            bounded::read_stream(std::io::stdin().lock(), MAX_INPUT_BYTES, "input")
                .context("stdin: cannot read input")?
        }
        Some(path) => bounded::read_file(path, MAX_INPUT_BYTES, "input")
            .with_context(|| format!("{}: cannot read input", path.display()))?,
    })
}

/// A small file given on the command line (`--config`, a manifest), read within
/// [`MAX_SMALL_FILE_BYTES`]; `what` says what it is in the error.
pub(crate) fn read_small_file(path: &std::path::Path, what: &str) -> Result<Vec<u8>> {
    host_loader::bounded::read_file(path, MAX_SMALL_FILE_BYTES, what)
        .with_context(|| format!("{}: cannot read the {what}", path.display()))
}

struct RunArgs<'a> {
    file: &'a std::path::Path,
    hook: &'a str,
    input: Option<&'a std::path::Path>,
    jsonl: bool,
    json: bool,
    level: Option<SecurityLevel>,
    policy: Option<&'a std::path::Path>,
    config: Option<&'a std::path::Path>,
    plugin_data: Option<&'a std::path::Path>,
}

fn run(args: &RunArgs<'_>) -> Result<ExitCode> {
    // Start the launcher first, while this process is small (a failure shows at the first
    // worker start with its full context).
    let _ = host_loader::worker::launcher::start_default();
    let RunArgs {
        file,
        hook,
        input,
        jsonl,
        json,
        level,
        policy,
        config,
        plugin_data,
    } = *args;
    let plugin = open(file)?;
    let Some(entry) = plugin.report().entry_point(hook) else {
        let hooks: Vec<&str> = plugin
            .manifest()
            .entry_points
            .iter()
            .map(|e| e.hook.as_str())
            .collect();
        bail!(
            "{}: plugin `{}` has no entry point `{hook}` (it exports: {})",
            file.display(),
            plugin.manifest().info.name,
            if hooks.is_empty() {
                "none".to_string()
            } else {
                hooks.join(", ")
            }
        );
    };
    let bytes = read_input(input)?;
    let inputs = split_inputs(&bytes, jsonl);
    hint_at_jsonl(&bytes, jsonl);

    let mut out = terminal::stdout();
    let mut all_ok = true;
    if !entry.callable {
        let reasons: Vec<&str> = plugin
            .report()
            .blocking_findings()
            .map(|f| f.message.as_str())
            .collect();
        let result = CallResult::failed(Outcome::Denied, reasons.join("; "), Default::default());
        for &line in &inputs.lines {
            print_result(&mut out, line, &result, json)?;
        }
        return Ok(ExitCode::from(1));
    }

    let policy = load_policy(policy)?;
    let decision = evaluate(plugin.manifest(), Some(plugin.report()), &policy, level);
    if !decision.allows() {
        let result = CallResult::failed(
            Outcome::Denied,
            format!("denied by policy: {}", decision.reasons.join("; ")),
            Default::default(),
        );
        for &line in &inputs.lines {
            print_result(&mut out, line, &result, json)?;
        }
        return Ok(ExitCode::from(1));
    }
    let mut options = WorkerOptions::for_decision(&decision, &policy);
    if let Some(dir) = plugin_data {
        if dir.exists() && !dir.is_dir() {
            anyhow::bail!(
                "{}: the plugin data directory is not a directory; name a directory",
                dir.display()
            );
        }
        if !dir.is_dir() {
            anyhow::bail!(
                "{}: the plugin data directory does not exist; create it (`mkdir -p {}`)",
                dir.display(),
                dir.display()
            );
        }
        options.data_dir = Some(dir.to_path_buf());
    }
    if let Some(config) = config {
        let bytes = read_small_file(config, "configuration")?;
        options.config = serde_json::from_slice(&bytes).with_context(|| {
            format!("{}: the configuration is not valid JSON", config.display())
        })?;
    }
    // One worker; the stream keeps several requests in flight and continues on a fresh worker
    // after a failed call.
    let config = PoolConfig {
        max_workers: 1,
        ..PoolConfig::default()
    };
    let pool = Pool::new(Arc::new(plugin), options, config);
    let mut stdout_closed = false;
    pool.call_many(hook, &inputs.calls, |index, result| {
        all_ok &= result.status == Outcome::Ok;
        if !stdout_closed && print_result(&mut out, inputs.line(index), &result, json).is_err() {
            // stdout closed (e.g. piped into `head`): keep quiet from now on.
            stdout_closed = true;
        }
    });
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `text` (written by a plugin: an error, a path it asked for) made safe for a terminal:
/// control characters escaped, so no escape sequence reaches the operator's terminal, and
/// cut at 1024 characters.
pub(crate) fn printable(text: &str) -> String {
    const MAX_CHARS: usize = 1024;
    let mut shown = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_CHARS {
            shown.push('…');
            break;
        }
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// The calls an input makes: one per non-blank line with `--jsonl`, else the whole input.
pub(crate) struct Inputs<'a> {
    /// Each call's input.
    pub calls: Vec<&'a [u8]>,
    /// Each call's line in the input, from 1 (blank lines count, so that a result names the
    /// line an editor shows); 1 without `--jsonl`.
    pub lines: Vec<usize>,
}

impl Inputs<'_> {
    /// The input line of call `index`.
    pub fn line(&self, index: usize) -> usize {
        self.lines.get(index).copied().unwrap_or(index + 1)
    }
}

pub(crate) fn split_inputs(bytes: &[u8], jsonl: bool) -> Inputs<'_> {
    if !jsonl {
        return Inputs {
            calls: vec![bytes],
            lines: vec![1],
        };
    }
    let (lines, calls) = bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(index, line)| (index + 1, line))
        .unzip();
    Inputs { calls, lines }
}

/// Says on stderr that `--jsonl` was probably meant when the input, taken whole, is not one JSON
/// value but is several lines of which the first is one (JSON Lines).
pub(crate) fn hint_at_jsonl(bytes: &[u8], jsonl: bool) {
    use serde::de::IgnoredAny;
    if jsonl || serde_json::from_slice::<IgnoredAny>(bytes).is_ok() {
        return;
    }
    let lines = split_inputs(bytes, true).calls;
    if lines.len() > 1 && serde_json::from_slice::<IgnoredAny>(lines[0]).is_ok() {
        eprintln!(
            "plugin-host: hint: the input is {} lines of JSON, passed as one input; add --jsonl \
             to make one call per line",
            lines.len()
        );
    }
}

/// `value` (a result or a record) as one JSON line, with the input line it answers.
pub(crate) fn write_json_line(
    out: &mut impl Write,
    line: usize,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    let mut value = serde_json::to_value(value).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("line".into(), line.into());
    }
    writeln!(out, "{value}")
}

/// What a human line shows of a result: its output as JSON, else its error (made printable).
pub(crate) fn result_detail(result: &CallResult) -> String {
    match (&result.output, &result.error) {
        (Some(output), _) => output.to_string(),
        (None, Some(error)) => printable(error),
        (None, None) => String::new(),
    }
}

pub(crate) fn print_result(
    out: &mut impl Write,
    line: usize,
    result: &CallResult,
    json: bool,
) -> std::io::Result<()> {
    if json {
        write_json_line(out, line, result)
    } else {
        let usage = &result.usage;
        let detail = result_detail(result);
        writeln!(
            out,
            "{line:>4} {:<13} cpu {} ms, wall {} ms, rss {} KiB  {detail}",
            result.status.as_str(),
            usage.cpu_ms,
            usage.wall_ms,
            usage.peak_rss_kb
        )
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn plugin_text_cannot_drive_the_terminal_and_is_bounded() {
        assert_eq!(printable("plain path/ünïcode"), "plain path/ünïcode");
        assert_eq!(printable("\x1b[2Jgone\r\n"), "\\u{1b}[2Jgone\\r\\n");
        let long = "x".repeat(5000);
        let shown = printable(&long);
        assert_eq!(shown.chars().count(), 1025);
        assert!(shown.ends_with('…'));
    }
}

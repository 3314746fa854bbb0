//! `plugin-host`: inspect and run plugins from the command line.
//!
//! Exit codes: 0 success; 1 the plugin was denied or a call did not end `ok`; 2 bad usage or
//! unreadable input. Every command takes `--json` for machine-readable output on stdout.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use host_loader::inspect::Severity;
use host_loader::outcome::{CallResult, Outcome};
use host_loader::{Plugin, Pool, PoolConfig, Report, WorkerOptions};
use plugin_manifest::SecurityLevel;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "plugin-host",
    version,
    about = "Inspect and run untrusted native plugins in confined worker processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a plugin's manifest, entry points and hash from the file, without running it.
    Inspect {
        /// The plugin (`.so`).
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run one hook of a plugin in a confined worker.
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
        /// Run at this security level instead of the one the plugin asks for.
        #[arg(long)]
        level: Option<SecurityLevel>,
        /// JSON file passed to the plugin's `init` entry point (default `{}`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { file, json } => inspect(&file, json),
        Command::Run {
            file,
            hook,
            input,
            jsonl,
            json,
            level,
            config,
        } => run(&RunArgs {
            file: &file,
            hook: &hook,
            input: input.as_deref(),
            jsonl,
            json,
            level,
            config: config.as_deref(),
        }),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("plugin-host: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn open(file: &std::path::Path) -> Result<Plugin> {
    Ok(Plugin::open(file)?)
}

fn inspect(file: &std::path::Path, json: bool) -> Result<ExitCode> {
    let plugin = open(file)?;
    let report = plugin.report();
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(report)?)?;
    } else {
        print_report(&mut out, report)?;
    }
    Ok(ExitCode::SUCCESS)
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
    if report.findings.is_empty() {
        writeln!(out, "findings    none")?;
    } else {
        writeln!(out, "findings")?;
        for finding in &report.findings {
            let severity = match finding.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            writeln!(
                out,
                "  {severity:<8} {:<26} {}",
                finding.code, finding.message
            )?;
        }
    }
    Ok(())
}

fn read_input(input: Option<&std::path::Path>) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match input {
        None => {}
        Some(path) if path.as_os_str() == "-" => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("reading stdin")?;
        }
        Some(path) => {
            bytes = std::fs::read(path)
                .with_context(|| format!("{}: cannot read input", path.display()))?;
        }
    }
    Ok(bytes)
}

struct RunArgs<'a> {
    file: &'a std::path::Path,
    hook: &'a str,
    input: Option<&'a std::path::Path>,
    jsonl: bool,
    json: bool,
    level: Option<SecurityLevel>,
    config: Option<&'a std::path::Path>,
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
        config,
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
    let inputs: Vec<&[u8]> = if jsonl {
        bytes
            .split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .collect()
    } else {
        vec![bytes.as_slice()]
    };

    let mut out = std::io::stdout().lock();
    let mut all_ok = true;
    if !entry.callable {
        let reasons: Vec<&str> = plugin
            .report()
            .blocking_findings()
            .map(|f| f.message.as_str())
            .collect();
        let result = CallResult::failed(Outcome::Denied, reasons.join("; "), Default::default());
        for (index, _) in inputs.iter().enumerate() {
            print_result(&mut out, index + 1, &result, json)?;
        }
        return Ok(ExitCode::from(1));
    }

    let mut options = WorkerOptions::new(plugin.limits(level));
    if let Some(config) = config {
        let text = std::fs::read_to_string(config)
            .with_context(|| format!("{}: cannot read the configuration", config.display()))?;
        options.config = serde_json::from_str(&text).with_context(|| {
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
    pool.call_many(hook, &inputs, |index, result| {
        all_ok &= result.status == Outcome::Ok;
        if !stdout_closed && print_result(&mut out, index + 1, &result, json).is_err() {
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

fn print_result(
    out: &mut impl Write,
    line: usize,
    result: &CallResult,
    json: bool,
) -> std::io::Result<()> {
    if json {
        let mut value = serde_json::to_value(result).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("line".into(), line.into());
        }
        writeln!(out, "{value}")
    } else {
        let usage = &result.usage;
        let detail = match (&result.output, &result.error) {
            (Some(output), _) => output.to_string(),
            (None, Some(error)) => error.clone(),
            (None, None) => String::new(),
        };
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

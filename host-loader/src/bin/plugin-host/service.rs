//! The service commands of `plugin-host`: install, list, uninstall, enable, disable, release,
//! invoke, dispatch, report, audit and serve, each thin over `host_loader::service::Host`.
//!
//! Their `--json` output is the library's serializable types, the same the HTTP API answers
//! with. Exit codes as everywhere: 0 success; 1 a plugin was denied or a call did not end
//! `ok`; 2 bad usage, an unknown id or unreadable input.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use host_loader::api::{self, ServeConfig};
use host_loader::audit::{AuditEntry, now_ms, parse_since};
use host_loader::outcome::Outcome;
use host_loader::report::{PluginSummary, SecurityReport};
use host_loader::service::{self, CallRecord, Host, HostBuilder, ServiceError};
use plugin_manifest::SecurityLevel;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// The environment variable naming the data dir when `--data-dir` is not given.
const DATA_DIR_ENV: &str = "PLUGIN_HOST_DATA_DIR";

/// How the host of a service command decides.
#[derive(Args, Debug, Clone)]
pub struct HostArgs {
    /// Policy file (TOML). Default: the data dir's policy.toml if there is one, else level
    /// standard and no extra roots or hosts.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The operator's level (plugins run at the stricter of this and their own request).
    #[arg(long)]
    level: Option<SecurityLevel>,
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Install a plugin into the data dir: inspect it, decide under the policy, copy it into
    /// the store under its SHA-256 and record it (exit 1 and nothing installed if denied).
    Install {
        /// The plugin (`.so`).
        file: PathBuf,
        #[command(flatten)]
        host: HostArgs,
        /// Print the result (or the refusing decision) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the installed plugins.
    List {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Uninstall a plugin (its audit history stays).
    Uninstall {
        /// Name, SHA-256, or a unique prefix of 8+ hex digits of it.
        id: String,
        /// Print the removed plugin as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enable a disabled plugin (a quarantined one needs `release`).
    Enable {
        /// Name, SHA-256, or a unique prefix of 8+ hex digits of it.
        id: String,
        /// Print the plugin as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable a plugin: `invoke` and `dispatch` no longer call it.
    Disable {
        /// Name, SHA-256, or a unique prefix of 8+ hex digits of it.
        id: String,
        /// Print the plugin as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lift a quarantine: the plugin is enabled again and its violation count starts afresh.
    Release {
        /// Name, SHA-256, or a unique prefix of 8+ hex digits of it.
        id: String,
        /// Print the plugin as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Call one hook of one installed plugin (recorded in the audit store).
    Invoke {
        /// Name, SHA-256, or a unique prefix of 8+ hex digits of it.
        id: String,
        /// The hook, e.g. `analyze`.
        hook: String,
        /// Input file, or `-` for stdin. Without it the input is empty.
        #[arg(long)]
        input: Option<PathBuf>,
        #[command(flatten)]
        host: HostArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Call a hook on every enabled plugin that exports it, concurrently, one result per
    /// plugin (per input line with --jsonl), each printed once its audit record is committed.
    Dispatch {
        /// The hook, e.g. `analyze`.
        hook: String,
        /// Input file, or `-` for stdin. Without it the input is empty.
        #[arg(long)]
        input: Option<PathBuf>,
        /// One call per non-empty input line; each plugin streams the lines through its own
        /// warm worker. Results are printed as they complete (each names its line and plugin).
        #[arg(long)]
        jsonl: bool,
        #[command(flatten)]
        host: HostArgs,
        /// Print results as JSON (one object a line).
        #[arg(long)]
        json: bool,
    },
    /// Security report of one installed plugin, or of all: manifest, permissions with risk,
    /// findings, enforcement, usage, violations, status.
    Report {
        /// Name, SHA-256, or a unique prefix of 8+ hex digits of it; all plugins without it.
        id: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The audit trail: installs, decisions, status changes, every call with its usage and
    /// violations, oldest first.
    Audit {
        /// Only this plugin (also one that was uninstalled: name or full SHA-256).
        #[arg(long)]
        plugin: Option<String>,
        /// Only entries since TIME: RFC 3339 (2026-12-04T05:00:00Z) or a duration ago (10m, 2h).
        #[arg(long)]
        since: Option<String>,
        /// Only the latest N entries (0: all of them).
        #[arg(long, value_name = "N", default_value_t = host_loader::service::DEFAULT_AUDIT_LIMIT)]
        limit: usize,
        /// Print the entries as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the HTTP API (bearer token in the data dir's api-token, created at first start).
    /// Prints `listening on http://ADDR` as its first line.
    Serve {
        /// Address to listen on (port 0: any free port).
        #[arg(long, default_value = api::DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Largest request body, in bytes.
        #[arg(long, default_value_t = api::DEFAULT_BODY_LIMIT)]
        body_limit: usize,
        /// Most connections at once; more are closed as soon as they are accepted.
        #[arg(long, default_value_t = api::MAX_CONNECTIONS)]
        max_connections: usize,
        /// Seconds a client has to send a request's headers before its connection is closed.
        #[arg(long, value_name = "SECONDS", default_value_t = api::HEADER_READ_TIMEOUT.as_secs())]
        header_timeout: u64,
        #[command(flatten)]
        host: HostArgs,
        /// Accepted for symmetry with the other commands; the API always answers JSON.
        #[arg(long)]
        json: bool,
    },
}

impl ServiceCommand {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            ServiceCommand::Install { json, .. }
            | ServiceCommand::List { json }
            | ServiceCommand::Uninstall { json, .. }
            | ServiceCommand::Enable { json, .. }
            | ServiceCommand::Disable { json, .. }
            | ServiceCommand::Release { json, .. }
            | ServiceCommand::Invoke { json, .. }
            | ServiceCommand::Dispatch { json, .. }
            | ServiceCommand::Report { json, .. }
            | ServiceCommand::Audit { json, .. }
            | ServiceCommand::Serve { json, .. } => *json,
        }
    }
}

/// The data dir: `--data-dir`, else `$PLUGIN_HOST_DATA_DIR`, else `$XDG_DATA_HOME/plugin-host`,
/// else `~/.local/share/plugin-host`.
fn data_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir);
    }
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = env(DATA_DIR_ENV) {
        return Ok(dir);
    }
    if let Some(dir) = env("XDG_DATA_HOME").filter(|d| d.is_absolute()) {
        return Ok(dir.join("plugin-host"));
    }
    match env("HOME") {
        Some(home) => Ok(home.join(".local/share/plugin-host")),
        None => {
            bail!("no data dir: give --data-dir DIR or set {DATA_DIR_ENV} (HOME is not set either)")
        }
    }
}

fn host(dir: &Path, args: Option<&HostArgs>) -> Result<Host> {
    let mut builder = HostBuilder::new(dir);
    if let Some(args) = args {
        if let Some(policy) = &args.policy {
            builder.policy(crate::load_policy(Some(policy))?);
        }
        builder.level(args.level);
    }
    Ok(builder.build()?)
}

/// Warns, on stderr, of each policy section that names no installed plugin (likely a typo: it
/// has no effect).
fn warn_of_unmatched_policy_sections(host: &Host) {
    for name in host.unmatched_policy_sections().unwrap_or_default() {
        eprintln!(
            "plugin-host: warning: the policy has a [plugins.{name}] section, but no installed \
             plugin is named `{name}`, so it has no effect; check the name (`plugin-host list` \
             shows the installed ones)"
        );
    }
}

/// The host of a data dir that must exist already: only `install` and `serve` make one, so
/// that a mistyped `--data-dir` given to any other command is an error, not a new empty host.
fn existing_host(dir: &Path, args: Option<&HostArgs>) -> Result<Host> {
    if !dir.exists() {
        return Err(ServiceError::DataDir {
            path: dir.to_path_buf(),
            error: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no such data dir (nothing was ever installed there); check --data-dir or \
                     {DATA_DIR_ENV}, or install a plugin first (`plugin-host install FILE`)"
                ),
            ),
        }
        .into());
    }
    host(dir, args)
}

/// Runs a service command.
pub fn run(command: ServiceCommand, data_dir_arg: Option<PathBuf>) -> Result<ExitCode> {
    let dir = data_dir(data_dir_arg)?;
    let mut out = crate::terminal::stdout();
    match command {
        ServiceCommand::Install {
            file,
            host: args,
            json,
        } => {
            let host = host(&dir, Some(&args))?;
            let installed = host.install(&file);
            warn_of_unmatched_policy_sections(&host);
            match installed {
                Ok(installed) => {
                    if json {
                        writeln!(out, "{}", serde_json::to_string_pretty(&installed)?)?;
                    } else {
                        let p = &installed.plugin;
                        writeln!(
                            out,
                            "installed {} {} as {} (level {}, hooks: {})",
                            p.name,
                            p.version,
                            p.id,
                            p.level.as_str().unwrap_or("?"),
                            p.hooks.join(", ")
                        )?;
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(ServiceError::Denied {
                    source_name,
                    name,
                    decision,
                }) => {
                    if json {
                        writeln!(out, "{}", serde_json::to_string_pretty(&decision)?)?;
                    }
                    eprintln!(
                        "plugin-host: {}: install refused: plugin `{name}` is denied by the policy",
                        crate::terminal::escaped(&source_name)
                    );
                    for reason in &decision.reasons {
                        eprintln!("  - {}", crate::terminal::escaped(reason));
                    }
                    Ok(ExitCode::from(1))
                }
                Err(other) => Err(other.into()),
            }
        }
        ServiceCommand::List { json } if !dir.exists() => {
            // Nothing installed, and listing creates nothing.
            if json {
                writeln!(out, "[]")?;
                eprintln!(
                    "plugin-host: note: {} does not exist (nothing was ever installed there)",
                    dir.display()
                );
            } else {
                writeln!(
                    out,
                    "no plugins installed in {} (it does not exist)",
                    dir.display()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ServiceCommand::List { json } => {
            let host = existing_host(&dir, None)?;
            let list = host.list()?;
            warn_of_unmatched_policy_sections(&host);
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else if list.is_empty() {
                writeln!(out, "no plugins installed in {}", dir.display())?;
            } else {
                writeln!(
                    out,
                    "{:<12} {:<20} {:<8} {:<11} {:<8} hooks",
                    "id", "name", "version", "status", "level"
                )?;
                for p in &list {
                    print_summary_line(&mut out, p)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ServiceCommand::Uninstall { id, json } => status_change(
            &mut out,
            json,
            "uninstalled",
            existing_host(&dir, None)?.uninstall(&id),
        ),
        ServiceCommand::Enable { id, json } => status_change(
            &mut out,
            json,
            "enabled",
            existing_host(&dir, None)?.enable(&id),
        ),
        ServiceCommand::Disable { id, json } => status_change(
            &mut out,
            json,
            "disabled",
            existing_host(&dir, None)?.disable(&id),
        ),
        ServiceCommand::Release { id, json } => status_change(
            &mut out,
            json,
            "released",
            existing_host(&dir, None)?.release(&id),
        ),
        ServiceCommand::Invoke {
            id,
            hook,
            input,
            host: args,
            json,
        } => {
            let _ = host_loader::worker::launcher::start_default();
            let host = existing_host(&dir, Some(&args))?;
            let input = crate::read_input(input.as_deref())?;
            let record = host.invoke(&id, &hook, &input)?;
            print_record(&mut out, 1, &record, json)?;
            Ok(exit_for(record.result.status == Outcome::Ok))
        }
        ServiceCommand::Dispatch {
            hook,
            input,
            jsonl,
            host: args,
            json,
        } => {
            let _ = host_loader::worker::launcher::start_default();
            let host = existing_host(&dir, Some(&args))?;
            warn_of_unmatched_policy_sections(&host);
            let bytes = crate::read_input(input.as_deref())?;
            let inputs = crate::split_inputs(&bytes, jsonl);
            crate::hint_at_jsonl(&bytes, jsonl);
            drop(out);
            dispatch(&host, &hook, &inputs, json)
        }
        ServiceCommand::Report { id, json } => {
            let host = existing_host(&dir, None)?;
            warn_of_unmatched_policy_sections(&host);
            match id {
                Some(id) => {
                    let report = host.report(&id)?;
                    if json {
                        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
                    } else {
                        print_security_report(&mut out, &report)?;
                    }
                }
                None => {
                    let reports = host.reports()?;
                    if json {
                        writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?;
                    } else {
                        let t = &reports.totals;
                        writeln!(
                            out,
                            "{} plugins ({} enabled, {} disabled, {} quarantined), {} calls, {} violations",
                            t.plugins, t.enabled, t.disabled, t.quarantined, t.calls, t.violations
                        )?;
                        for report in &reports.plugins {
                            writeln!(out)?;
                            print_security_report(&mut out, report)?;
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ServiceCommand::Audit {
            plugin,
            since,
            limit,
            json,
        } => {
            let since = match since {
                Some(text) => Some(
                    parse_since(&text, now_ms())
                        .map_err(|message| anyhow::anyhow!("--since: {message}"))?,
                ),
                None => None,
            };
            let entries = existing_host(&dir, None)?.audit_entries(
                plugin.as_deref(),
                since,
                (limit != 0).then_some(limit),
            )?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
            } else {
                for entry in &entries {
                    print_audit_entry(&mut out, entry)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ServiceCommand::Serve {
            addr,
            body_limit,
            max_connections,
            header_timeout,
            host: args,
            json: _,
        } => {
            let _ = host_loader::worker::launcher::start_default();
            let host = Arc::new(host(&dir, Some(&args))?);
            if !addr.ip().is_loopback() {
                eprintln!(
                    "plugin-host: warning: serving on {addr}, which is reachable from other machines"
                );
            }
            let token = api::auth::token_path(&dir);
            drop(out);
            let config = ServeConfig {
                addr,
                body_limit,
                max_connections,
                header_read_timeout: std::time::Duration::from_secs(header_timeout.max(1)),
            };
            api::serve(host, &config, |bound| {
                println!("listening on http://{bound}");
                eprintln!(
                    "plugin-host: bearer token in {} (send `Authorization: Bearer <token>`)",
                    token.display()
                );
            })
            .with_context(|| format!("serving the API of {}", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit_for(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn status_change(
    out: &mut impl Write,
    json: bool,
    what: &str,
    result: Result<PluginSummary, ServiceError>,
) -> Result<ExitCode> {
    let summary = result?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
    } else {
        writeln!(out, "{what} {} ({})", summary.name, summary.id)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn dispatch(host: &Host, hook: &str, inputs: &crate::Inputs, json: bool) -> Result<ExitCode> {
    struct Shared {
        out: crate::terminal::TerminalSafe<std::io::Stdout>,
        all_ok: bool,
        error: Option<String>,
        closed: bool,
    }
    let shared = Mutex::new(Shared {
        out: crate::terminal::TerminalSafe(std::io::stdout()),
        all_ok: true,
        error: None,
        closed: false,
    });
    let sink = |index: usize, record: Result<CallRecord, ServiceError>| {
        let line = inputs.line(index);
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        match record {
            Ok(record) => {
                shared.all_ok &= record.result.status == Outcome::Ok;
                if !shared.closed && print_record(&mut shared.out, line, &record, json).is_err() {
                    // stdout closed (piped into `head`): the calls go on, quietly.
                    shared.closed = true;
                }
            }
            Err(error) => {
                eprintln!(
                    "plugin-host: error: line {line}: {}",
                    crate::terminal::escaped(&error.to_string())
                );
                shared.error.get_or_insert_with(|| error.to_string());
            }
        }
    };
    let targets = host.dispatch_stream(hook, &inputs.calls, &sink)?;
    let shared = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    if targets.is_empty() {
        bail!(
            "no enabled plugin exports hook `{hook}` (`plugin-host list` shows the installed plugins and their hooks)"
        );
    }
    if let Some(error) = shared.error {
        bail!("some calls could not be recorded: {error}");
    }
    Ok(exit_for(shared.all_ok))
}

fn print_record(
    out: &mut impl Write,
    line: usize,
    record: &CallRecord,
    json: bool,
) -> std::io::Result<()> {
    if json {
        crate::write_json_line(out, line, record)
    } else {
        let result = &record.result;
        let detail = crate::result_detail(result);
        writeln!(
            out,
            "{line:>4} {:<20} {:<13} call {} cpu {} ms, wall {} ms  {detail}",
            record.plugin,
            result.status.as_str(),
            record.call_id,
            result.usage.cpu_ms,
            result.usage.wall_ms
        )
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn print_summary_line(out: &mut impl Write, p: &PluginSummary) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<12} {:<20} {:<8} {:<11} {:<8} {}",
        short(&p.id),
        p.name,
        p.version,
        p.status.as_str(),
        p.level.as_str().unwrap_or("?"),
        p.hooks.join(", ")
    )
}

fn print_security_report(out: &mut impl Write, r: &SecurityReport) -> Result<()> {
    let p = &r.plugin;
    writeln!(out, "plugin      {} {} ({})", p.name, p.version, p.id)?;
    writeln!(
        out,
        "status      {}{} since {}",
        p.status.as_str(),
        p.status_reason
            .as_deref()
            .map(|r| format!(": {}", crate::printable(r)))
            .unwrap_or_default(),
        p.status_since
    )?;
    writeln!(out, "installed   {} from {}", p.installed_at, p.source)?;
    writeln!(
        out,
        "level       {} (layers required: {})",
        r.enforcement.level.as_str().unwrap_or("?"),
        r.enforcement.required_layers
    )?;
    writeln!(
        out,
        "layers      {}",
        if r.enforcement.active_layers.is_empty() {
            "(no call yet)".to_string()
        } else {
            r.enforcement.active_layers.join(", ")
        }
    )?;
    if r.permissions.is_empty() {
        writeln!(out, "permissions none")?;
    } else {
        writeln!(out, "permissions")?;
        for perm in &r.permissions {
            let risk = perm
                .risk
                .and_then(|risk| serde_json::to_value(risk).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "?".into());
            writeln!(out, "  {:<7} {}", risk, perm.permission)?;
        }
    }
    if r.findings.is_empty() {
        writeln!(out, "findings    none")?;
    } else {
        writeln!(out, "findings")?;
        for f in &r.findings {
            writeln!(
                out,
                "  {:<8} {:<7} {:<26} {}",
                f.severity, f.source, f.code, f.message
            )?;
        }
    }
    let u = &r.usage;
    let outcomes: Vec<String> = u.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(
        out,
        "usage       {} calls ({}); cpu {} ms (max {}), wall {} ms (max {}), peak rss {} KiB; file ops {}, net requests {}, db queries {}",
        u.calls,
        if outcomes.is_empty() {
            "none".to_string()
        } else {
            outcomes.join(", ")
        },
        u.cpu_ms_total,
        u.cpu_ms_max,
        u.wall_ms_total,
        u.wall_ms_max,
        u.peak_rss_kb_max,
        u.file_ops,
        u.net_requests,
        u.db_queries
    )?;
    if r.violations.is_empty() {
        writeln!(out, "violations  none")?;
    } else {
        writeln!(out, "violations  {}", r.violations.len())?;
        for v in &r.violations {
            writeln!(
                out,
                "  {} call {} {} {}",
                v.time,
                v.call_id,
                v.rule,
                crate::printable(&v.detail)
            )?;
        }
    }
    Ok(())
}

fn print_audit_entry(out: &mut impl Write, entry: &AuditEntry) -> std::io::Result<()> {
    match entry {
        AuditEntry::Call {
            id,
            time,
            plugin,
            hook,
            status,
            error,
            usage,
            violations,
            ..
        } => {
            let violations: Vec<String> = violations
                .iter()
                .map(|v| format!("{} {}", v.rule, crate::printable(&v.detail)))
                .collect();
            writeln!(
                out,
                "{time} call  {id:<6} {plugin:<20} {hook} {status} cpu {} ms wall {} ms{}{}",
                usage.cpu_ms,
                usage.wall_ms,
                error
                    .as_deref()
                    .map(|e| format!("  {}", crate::printable(e)))
                    .unwrap_or_default(),
                if violations.is_empty() {
                    String::new()
                } else {
                    format!("  violations: {}", violations.join("; "))
                }
            )
        }
        AuditEntry::Event {
            id,
            time,
            plugin,
            plugin_id,
            event,
            detail,
        } => {
            let reason = detail["reason"]
                .as_str()
                .map(|r| format!("  {r}"))
                .or_else(|| {
                    detail["decision"]["reasons"]
                        .as_array()
                        .filter(|r| !r.is_empty())
                        .map(|r| format!("  {}", serde_json::Value::from(r.clone())))
                })
                .unwrap_or_default();
            writeln!(
                out,
                "{time} event {id:<6} {plugin:<20} {event} {}{reason}",
                short(plugin_id)
            )
        }
    }
}

/// `validate --manifest FILE.json`: decide on a manifest given as JSON.
pub fn validate_manifest(
    file: &Path,
    policy: Option<&Path>,
    level: Option<SecurityLevel>,
    json: bool,
) -> Result<ExitCode> {
    let policy = crate::load_policy(policy)?;
    let bytes = crate::read_small_file(file, "manifest")?;
    let decision = service::validate_manifest(&bytes, &file.display().to_string(), &policy, level)?;
    let mut out = crate::terminal::stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&decision)?)?;
    } else {
        writeln!(
            out,
            "plugin      {}\ndecision    {}\nlevel       {} ({})",
            decision.plugin,
            if decision.allows() { "ALLOW" } else { "DENY" },
            decision.level,
            decision.level_reason
        )?;
        for finding in &decision.findings {
            writeln!(out, "  {:<26} {}", finding.code, finding.message)?;
        }
    }
    Ok(exit_for(decision.allows()))
}

//! The plugin service (issue #8): install, dispatch with isolation, recovery, quarantine, the
//! audit store (including a real SIGKILL in the middle of a burst) and the reports, through
//! the library and the CLI.

use host_loader::outcome::Outcome;
use host_loader::policy::Policy;
use host_loader::service::{CallRecord, Host, HostBuilder, Recovery, ServiceError};
use integration_tests::{binary, first_story_lines, path, plugin, stories, stories_path};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refused requests per call of hostile-path-escape, each one a violation: its seven attempts
/// but `data/link.txt`, which (no test planted the symlink here) is simply missing.
const REFUSED_PER_CALL: usize = 6;

/// The well-behaved examples that export `analyze`: crate and manifest name (the
/// `story-hooks-plugin` crate's manifest, declared in its dependency, is `story-hooks`).
const WELL_BEHAVED: &[(&str, &str)] = &[
    ("word-stats", "word-stats"),
    ("story-sanitizer", "story-sanitizer"),
    ("lifecycle-probe", "lifecycle-probe"),
    ("threads-ok", "threads-ok"),
    ("feed-fetcher", "feed-fetcher"),
    ("story-hooks-plugin", "story-hooks"),
    ("story-archive", "story-archive"),
    ("link-checker", "link-checker"),
];

fn recovery(base_ms: u64) -> Recovery {
    Recovery {
        backoff_base: Duration::from_millis(base_ms),
        backoff_max: Duration::from_millis(base_ms * 8),
        ..Recovery::default()
    }
}

fn host_with(dir: &Path, policy: Policy, recovery: Recovery) -> Host {
    HostBuilder::new(dir)
        .worker_exe(binary("plugin-worker"))
        .policy(policy)
        .recovery(recovery)
        .build()
        .unwrap()
}

fn host(dir: &Path) -> Host {
    host_with(dir, Policy::default(), recovery(10))
}

fn story_lines() -> Vec<Vec<u8>> {
    stories()
        .iter()
        .map(|s| serde_json::to_vec(s).unwrap())
        .collect()
}

fn audit_counts(dir: &Path, plugin_id: &str) -> BTreeMap<String, u64> {
    let db = rusqlite::Connection::open(dir.join("audit.db")).unwrap();
    let mut statement = db
        .prepare("SELECT status, COUNT(*) FROM calls WHERE plugin_id = ?1 GROUP BY status")
        .unwrap();
    statement
        .query_map([plugin_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn dispatch_over_every_story_is_ok_per_plugin_while_a_hostile_plugin_fails_alone_and_is_quarantined()
 {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    for (krate, name) in WELL_BEHAVED {
        let installed = host.install(&plugin(krate)).unwrap();
        assert_eq!(installed.plugin.name, *name);
        assert!(installed.decision.allows());
    }
    let hostile = host.install(&plugin("hostile-path-escape")).unwrap().plugin;

    let lines = story_lines();
    let inputs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let records: Mutex<Vec<(usize, CallRecord)>> = Mutex::new(Vec::new());
    let targets = host
        .dispatch_stream("analyze", &inputs, &|index, record| {
            records.lock().unwrap().push((index, record.unwrap()));
        })
        .unwrap();
    assert_eq!(targets.len(), WELL_BEHAVED.len() + 1);
    let records = records.into_inner().unwrap();

    let mut by_plugin: BTreeMap<String, Vec<(usize, CallRecord)>> = BTreeMap::new();
    for (index, record) in records {
        by_plugin
            .entry(record.plugin.clone())
            .or_default()
            .push((index, record));
    }
    for (_, name) in WELL_BEHAVED {
        let mut results = by_plugin.remove(*name).unwrap();
        results.sort_by_key(|(index, _)| *index);
        let indices: Vec<usize> = results.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, (0..lines.len()).collect::<Vec<_>>(), "{name}");
        for (index, record) in &results {
            assert_eq!(
                record.result.status,
                Outcome::Ok,
                "{name} story {index}: {:?}",
                record.result
            );
        }
        let report = host.report(name).unwrap();
        assert_eq!(report.usage.calls, lines.len() as u64, "{name}");
        assert_eq!(report.usage.outcomes["ok"], lines.len() as u64, "{name}");
    }
    // The results are the plugins' real answers for each story.
    let word_stats = host.report("word-stats").unwrap();
    assert!(
        word_stats
            .enforcement
            .active_layers
            .iter()
            .any(|l| l == "seccomp")
    );

    let mut hostile_results = by_plugin.remove("hostile-path-escape").unwrap();
    assert!(
        by_plugin.is_empty(),
        "unexpected plugins: {:?}",
        by_plugin.keys()
    );
    hostile_results.sort_by_key(|(index, _)| *index);
    assert_eq!(hostile_results.len(), lines.len());
    let (violations, rest) = hostile_results.split_at(3);
    for (_, record) in violations {
        assert_eq!(
            record.result.status,
            Outcome::Violation,
            "{:?}",
            record.result
        );
        assert!(
            record
                .result
                .violations
                .iter()
                .any(|v| v.rule == "path" && v.detail == "data/../secret.txt"),
            "{:?}",
            record.result.violations
        );
    }
    for (_, record) in rest {
        assert_eq!(record.result.status, Outcome::Denied);
        assert!(
            record
                .result
                .error
                .as_deref()
                .unwrap()
                .contains("quarantined"),
            "{:?}",
            record.result.error
        );
    }
    let summary = host.summary(&hostile.id).unwrap();
    assert_eq!(summary.status.as_str(), "quarantined");
    assert!(
        summary
            .status_reason
            .as_deref()
            .unwrap()
            .contains("3 calls with violations"),
        "{:?}",
        summary.status_reason
    );

    // The report matches the audit table.
    let report = host.report("hostile-path-escape").unwrap();
    let counts = audit_counts(dir.path(), &hostile.id);
    assert_eq!(counts, report.usage.outcomes);
    assert_eq!(counts["violation"], 3);
    assert_eq!(counts["denied"], lines.len() as u64 - 3);
    // Every refused request of the three calls is a violation on record.
    let recorded: usize = violations
        .iter()
        .map(|(_, r)| r.result.violations.len())
        .sum();
    assert_eq!(recorded, 3 * REFUSED_PER_CALL);
    assert_eq!(report.violations.len(), recorded);
    assert!(
        report
            .violations
            .iter()
            .all(|v| ["path", "env", "host"].contains(&v.rule.as_str())),
        "{:?}",
        report.violations
    );

    // A quarantined plugin is not dispatched to, `enable` does not lift the quarantine,
    // `release` does, and its count starts afresh.
    let first = inputs[0];
    let again = host.dispatch("analyze", first).unwrap();
    assert_eq!(again.len(), WELL_BEHAVED.len());
    assert!(again.iter().all(|r| r.result.status == Outcome::Ok));
    let error = host.enable("hostile-path-escape").unwrap_err();
    assert!(error.to_string().contains("release"), "{error}");
    // Nor does disable + enable: disable refuses to overwrite a quarantine.
    let error = host.disable("hostile-path-escape").unwrap_err();
    assert!(error.to_string().contains("release"), "{error}");
    assert_eq!(
        host.summary(&hostile.id).unwrap().status.as_str(),
        "quarantined"
    );
    host.release(&hostile.id[..10]).unwrap();
    let record = host
        .invoke("hostile-path-escape", "analyze", first)
        .unwrap();
    assert_eq!(record.result.status, Outcome::Violation);
    assert_eq!(
        host.summary("hostile-path-escape").unwrap().status.as_str(),
        "enabled"
    );
}

#[test]
fn crashes_and_hangs_fail_alone_and_crashed_workers_restart_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    // A tight wall clock for the sleeper keeps the test fast.
    let policy = Policy::parse("[plugins.hostile-sleep]\nlimits = { wall_ms = 300 }").unwrap();
    let host = host_with(dir.path(), policy, recovery(150));
    for name in ["word-stats", "hostile-segv", "hostile-sleep"] {
        host.install(&plugin(name)).unwrap();
    }
    let story = serde_json::to_vec(&stories()[0]).unwrap();
    let results = host.dispatch("analyze", &story).unwrap();
    let by_name: BTreeMap<&str, &CallRecord> =
        results.iter().map(|r| (r.plugin.as_str(), r)).collect();
    assert_eq!(by_name["word-stats"].result.status, Outcome::Ok);
    assert_eq!(
        by_name["word-stats"].result.output.as_ref().unwrap()["words"],
        129
    );
    assert_eq!(by_name["hostile-segv"].result.status, Outcome::Crashed);
    assert_eq!(by_name["hostile-sleep"].result.status, Outcome::Timeout);

    // The crashed plugin gets a fresh worker on its next call, after a backoff that doubles.
    let state = host.recovery_state("hostile-segv").unwrap();
    assert_eq!((state.consecutive_failures, state.backoff_ms), (1, 150));
    let first_pid = by_name["hostile-segv"].result.worker_pid;
    let second = host.invoke("hostile-segv", "analyze", &story).unwrap();
    assert_eq!(second.result.status, Outcome::Crashed);
    assert_ne!(second.result.worker_pid, first_pid);
    let state = host.recovery_state("hostile-segv").unwrap();
    assert_eq!((state.consecutive_failures, state.backoff_ms), (2, 300));
    // The third call comes right after the second failure: it waits out the 300 ms backoff.
    let started = Instant::now();
    let third = host.invoke("hostile-segv", "analyze", &story).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(third.result.status, Outcome::Crashed);
    assert_ne!(third.result.worker_pid, second.result.worker_pid);
    assert_eq!(
        host.recovery_state("hostile-segv").unwrap().workers_started,
        3
    );
    // Crashes are not violations: no quarantine.
    assert_eq!(
        host.summary("hostile-segv").unwrap().status.as_str(),
        "enabled"
    );
    // The healthy plugin was never slowed or touched.
    let ok = host.invoke("word-stats", "analyze", &story).unwrap();
    assert_eq!(ok.result.status, Outcome::Ok);
    assert_eq!(
        host.recovery_state("word-stats")
            .unwrap()
            .consecutive_failures,
        0
    );
}

#[test]
fn install_refuses_denied_plugins_with_reasons_and_manages_the_installed_set() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());

    let error = host.install(&plugin("greedy-exfil")).unwrap_err();
    let ServiceError::Denied { decision, .. } = &error else {
        panic!("{error}")
    };
    assert!(decision.reasons.len() >= 2, "{:?}", decision.reasons);
    assert!(error.to_string().contains("greedy-exfil"), "{error}");
    assert!(host.list().unwrap().is_empty());
    assert!(!dir.path().join("plugins").read_dir().unwrap().any(|_| true));
    let refused = host
        .audit_entries(Some("greedy-exfil"), None, None)
        .unwrap();
    let refused = serde_json::to_value(&refused).unwrap();
    assert_eq!(refused[0]["event"], "install_refused");
    assert_eq!(refused[0]["detail"]["decision"]["decision"], "deny");

    let not_a_plugin = dir.path().join("notes.so");
    std::fs::write(&not_a_plugin, b"just text").unwrap();
    let error = host.install(&not_a_plugin).unwrap_err();
    assert!(
        error.to_string().contains("notes.so") && error.to_string().contains("not an ELF"),
        "{error}"
    );

    let installed = host.install(&plugin("word-stats")).unwrap().plugin;
    let so = dir
        .path()
        .join("plugins")
        .join(&installed.id)
        .join("plugin.so");
    assert_eq!(
        std::fs::read(&so).unwrap(),
        std::fs::read(plugin("word-stats")).unwrap()
    );
    assert!(
        dir.path()
            .join("plugins")
            .join(&installed.id)
            .join("data")
            .is_dir()
    );
    let again = host.install(&plugin("word-stats")).unwrap_err();
    assert!(again.to_string().contains("already installed"), "{again}");

    // Ids: full sha, name, or a unique prefix of 8+ hex digits.
    for id in [&installed.id[..], "word-stats", &installed.id[..8]] {
        assert_eq!(host.summary(id).unwrap().id, installed.id);
    }
    for id in [&installed.id[..7], "wordstats", "zzzzzzzzzz"] {
        assert!(
            matches!(host.summary(id), Err(ServiceError::NotFound { .. })),
            "{id}"
        );
    }
    let error = host.invoke("word-stats", "summarize", b"{}").unwrap_err();
    assert!(error.to_string().contains("exports: analyze"), "{error}");

    // Disabled: not dispatched to, and a direct call is `denied` (and recorded). Disabling
    // again (and enabling again below) changes nothing and records nothing.
    host.disable("word-stats").unwrap();
    let since = host.summary("word-stats").unwrap().status_since;
    assert_eq!(host.disable("word-stats").unwrap().status_since, since);
    let story = serde_json::to_vec(&stories()[0]).unwrap();
    assert!(host.dispatch("analyze", &story).unwrap().is_empty());
    let denied = host.invoke("word-stats", "analyze", &story).unwrap();
    assert_eq!(denied.result.status, Outcome::Denied);
    assert!(denied.result.error.unwrap().contains("disabled"));
    host.enable("word-stats").unwrap();
    host.enable("word-stats").unwrap();
    assert_eq!(
        host.invoke("word-stats", "analyze", &story)
            .unwrap()
            .result
            .status,
        Outcome::Ok
    );

    // Uninstall removes the files; the history stays.
    host.uninstall("word-stats").unwrap();
    assert!(!so.exists());
    assert!(host.list().unwrap().is_empty());
    let history =
        serde_json::to_value(host.audit_entries(Some(&installed.id), None, None).unwrap()).unwrap();
    let kinds: Vec<String> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["event"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("call {}", e["status"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "install",
            "disable",
            "call denied",
            "enable",
            "call ok",
            "uninstall"
        ]
    );
}

fn plugin_host(args: &[&str], data_dir: &Path) -> Output {
    Command::new(binary("plugin-host"))
        .args(args)
        .env("PLUGIN_HOST_DATA_DIR", data_dir)
        .output()
        .unwrap()
}

#[test]
fn cli_service_commands_exit_codes_and_report_matching_the_audit_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The data dir comes from PLUGIN_HOST_DATA_DIR (plugin_host sets it).
    for name in ["word-stats", "hostile-path-escape"] {
        let out = plugin_host(&["install", path(&plugin(name)), "--json"], &data);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let installed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(installed["plugin"]["name"], name);
    }
    let refused = plugin_host(&["install", path(&plugin("greedy-exfil"))], &data);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("install refused") && stderr.contains("too broad"),
        "{stderr}"
    );
    let unknown = plugin_host(&["report", "no-such-plugin"], &data);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no-such-plugin"));

    // Five stories: word-stats ok, the path escaper violates, is quarantined after three.
    let input = dir.path().join("five.jsonl");
    std::fs::write(&input, first_story_lines(5, "\n")).unwrap();
    let out = plugin_host(
        &[
            "dispatch",
            "analyze",
            "--input",
            path(&input),
            "--jsonl",
            "--json",
        ],
        &data,
    );
    assert_eq!(out.status.code(), Some(1), "not every call ended ok");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    let ok = lines
        .iter()
        .filter(|l| l["plugin"] == "word-stats" && l["status"] == "ok")
        .count();
    assert_eq!(ok, 5);

    let out = plugin_host(&["report", "hostile-path-escape", "--json"], &data);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "quarantined");
    let id = report["id"].as_str().unwrap();
    let counts = audit_counts(&data, id);
    assert_eq!(
        counts,
        BTreeMap::from([("violation".into(), 3), ("denied".into(), 2)])
    );
    assert_eq!(report["usage"]["calls"], 5);
    assert_eq!(report["usage"]["outcomes"]["violation"], 3);
    assert_eq!(report["usage"]["outcomes"]["denied"], 2);
    assert_eq!(
        report["violations"].as_array().unwrap().len(),
        3 * REFUSED_PER_CALL
    );
    assert_eq!(report["violations"][0]["rule"], "path");
    assert!(report["usage"]["wall_ms_total"].as_u64().is_some());
    let permissions = report["permissions"].as_array().unwrap();
    assert_eq!(permissions.len(), 2, "{report}");
    let all = plugin_host(&["report", "--json"], &data);
    let all: Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(all["totals"]["plugins"], 2);
    assert_eq!(all["totals"]["quarantined"], 1);
    assert_eq!(all["totals"]["calls"], 10);

    // The audit trail, filtered by plugin and time.
    let out = plugin_host(&["audit", "--plugin", "word-stats", "--json"], &data);
    let trail: Value = serde_json::from_slice(&out.stdout).unwrap();
    let calls = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "call")
        .count();
    assert_eq!(calls, 5);
    let out = plugin_host(
        &["audit", "--since", "2999-01-01T00:00:00Z", "--json"],
        &data,
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        Value::Array(vec![])
    );
    let out = plugin_host(&["audit", "--since", "last tuesday"], &data);
    assert_eq!(out.status.code(), Some(2));

    // release lifts the quarantine; the human list shows the status.
    let out = plugin_host(&["release", "hostile-path-escape"], &data);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8(plugin_host(&["list"], &data).stdout).unwrap();
    assert!(list.lines().all(|l| !l.contains("quarantined")), "{list}");
    assert!(list.contains("hostile-path-escape"), "{list}");
}

#[test]
fn a_host_killed_mid_burst_loses_no_acknowledged_call_and_reopens_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    {
        let host = host(data);
        host.install(&plugin("word-stats")).unwrap();
        host.install(&plugin("story-sanitizer")).unwrap();
    }
    let mut child = Command::new(binary("plugin-host"))
        .args([
            "--data-dir",
            path(data),
            "dispatch",
            "analyze",
            "--jsonl",
            "--json",
        ])
        .args(["--input", path(&stories_path())])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Every line is printed after its call's record committed: an acknowledgement.
    let mut acknowledged: Vec<Value> = Vec::new();
    let mut line = String::new();
    while acknowledged.len() < 60 {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the dispatch ended early"
        );
        acknowledged.push(serde_json::from_str(&line).unwrap());
    }
    child.kill().unwrap(); // SIGKILL, in the middle of the burst (292 calls in all)
    // Lines already written before the kill are acknowledgements too.
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        if let Ok(value) = serde_json::from_str(&line) {
            acknowledged.push(value);
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the host was killed, not finished"
    );
    assert!(acknowledged.len() < 292, "the kill came after the burst");

    let db = rusqlite::Connection::open(data.join("audit.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    for ack in &acknowledged {
        let id = ack["call_id"].as_i64().unwrap();
        let (plugin, status): (String, String) = db
            .query_row(
                "SELECT plugin_name, status FROM calls WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap_or_else(|e| panic!("acknowledged call {id} is missing: {e}"));
        assert_eq!(plugin, ack["plugin"].as_str().unwrap());
        assert_eq!(status, ack["status"].as_str().unwrap());
    }
    drop(db);

    // The host reopens the store and carries on.
    let host = host(data);
    assert_eq!(host.audit().integrity_check().unwrap(), "ok");
    assert_eq!(host.list().unwrap().len(), 2);
    let story = serde_json::to_vec(&stories()[0]).unwrap();
    let results = host.dispatch("analyze", &story).unwrap();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.result.status == Outcome::Ok));
    let max_acknowledged = acknowledged
        .iter()
        .map(|a| a["call_id"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(results.iter().all(|r| r.call_id > max_acknowledged));
}

#[test]
fn concurrent_installs_of_one_file_install_it_once_and_intact() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let file = plugin("word-stats");
    let results: Vec<Result<_, ServiceError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| host.install(&file)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let installed: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(installed.len(), 1, "{results:?}");
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(error, ServiceError::AlreadyInstalled { same: true, .. }),
            "{error}"
        );
    }
    let story = serde_json::to_vec(&stories()[0]).unwrap();
    let record = host.invoke("word-stats", "analyze", &story).unwrap();
    assert_eq!(record.result.status, Outcome::Ok, "{:?}", record.result);
}

#[test]
fn a_tampered_data_dir_is_refused_without_harm_and_fails_only_its_own_plugin() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let story = serde_json::to_vec(&stories()[0]).unwrap();
    let (word_stats, sanitizer) = {
        let host = host(&data);
        let word_stats = host.install(&plugin("word-stats")).unwrap().plugin;
        let sanitizer = host.install(&plugin("story-sanitizer")).unwrap().plugin;
        host.invoke("word-stats", "analyze", &story).unwrap();
        // The audit store and its WAL files (present while it is open) are the operator's
        // alone.
        for name in ["audit.db", "audit.db-wal", "audit.db-shm"] {
            let mode = std::fs::metadata(data.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{name}: {mode:o}");
        }
        (word_stats, sanitizer)
    };

    // One plugin's file disappears: a dispatch still runs the other, and the missing one's
    // result says what is wrong and what to do.
    std::fs::remove_file(data.join("plugins").join(&word_stats.id).join("plugin.so")).unwrap();
    let service = host(&data);
    let records = service.dispatch("analyze", &story).unwrap();
    assert_eq!(records.len(), 2);
    let by_name: BTreeMap<&str, &CallRecord> =
        records.iter().map(|r| (r.plugin.as_str(), r)).collect();
    assert_eq!(by_name["story-sanitizer"].result.status, Outcome::Ok);
    let missing = &by_name["word-stats"].result;
    assert_eq!(missing.status, Outcome::Denied);
    assert!(
        missing
            .error
            .as_deref()
            .unwrap()
            .contains("install it again"),
        "{missing:?}"
    );
    drop(service);

    // A row whose id was rewritten to climb out of the store: nothing outside is removed.
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "mine").unwrap();
    let db = rusqlite::Connection::open(data.join("audit.db")).unwrap();
    db.execute(
        "UPDATE plugins SET id = '../../victim', installed_at = 999999999999999 WHERE id = ?1",
        [&sanitizer.id],
    )
    .unwrap();
    drop(db);
    let host = host(&data);
    // A time past year 9999 is shown, not a panic.
    assert!(
        host.list()
            .unwrap()
            .iter()
            .any(|p| p.name == "story-sanitizer")
    );
    let error = host.uninstall("story-sanitizer").unwrap_err();
    assert!(error.to_string().contains("not a SHA-256"), "{error}");
    assert_eq!(
        std::fs::read_to_string(victim.join("keep.txt")).unwrap(),
        "mine"
    );
    drop(host);

    // A row whose JSON was corrupted: listed as disabled with the reason, not run, and it can
    // still be uninstalled; the other plugins are not affected.
    let db = rusqlite::Connection::open(data.join("audit.db")).unwrap();
    db.execute(
        "UPDATE plugins SET manifest = '{bad' WHERE id = ?1",
        [&word_stats.id],
    )
    .unwrap();
    drop(db);
    let reopened = super::service::host(&data);
    let listed = reopened.list().unwrap();
    let corrupt = listed.iter().find(|p| p.name == "word-stats").unwrap();
    assert_eq!(corrupt.status.as_str(), "disabled");
    assert!(
        corrupt
            .status_reason
            .as_deref()
            .unwrap()
            .contains("corrupt"),
        "{corrupt:?}"
    );
    let denied = reopened
        .invoke("word-stats", "analyze", &story)
        .unwrap()
        .result;
    assert_eq!(denied.status, Outcome::Denied);
    assert!(
        denied.error.as_deref().unwrap().contains("corrupt"),
        "{denied:?}"
    );
    reopened.uninstall("word-stats").unwrap();
    assert!(
        reopened
            .list()
            .unwrap()
            .iter()
            .all(|p| p.name != "word-stats")
    );
}

/// Another process holding the audit store past the busy timeout (10 s) does not make a call's
/// outcome vanish: the error carries it, and says why it was not recorded.
#[test]
fn a_call_that_cannot_be_recorded_still_reports_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    host.install(&plugin("word-stats")).unwrap();
    let story = serde_json::to_vec(&stories()[0]).unwrap();
    let holder = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let error = host.invoke("word-stats", "analyze", &story).unwrap_err();
    drop(holder);
    let ServiceError::NotRecorded { result, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(result.status, Outcome::Ok);
    let message = error.to_string();
    assert!(
        message.contains("the call ran and ended `ok`, but it could not be recorded")
            && message.contains("locked"),
        "{message}"
    );
    // The store is free again: the next call is recorded as usual.
    assert_eq!(
        host.invoke("word-stats", "analyze", &story)
            .unwrap()
            .result
            .status,
        Outcome::Ok
    );
}

#[test]
fn a_policy_file_that_others_could_change_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "default_level = \"minimal\"\n").unwrap();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o666)).unwrap();
    let error = HostBuilder::new(dir.path())
        .worker_exe(binary("plugin-worker"))
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("policy.toml") && error.contains("writable by other users (mode 666)"),
        "{error}"
    );
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let host = HostBuilder::new(dir.path())
        .worker_exe(binary("plugin-worker"))
        .build()
        .unwrap();
    assert_eq!(
        host.policy().default_level,
        plugin_manifest::SecurityLevel::Minimal
    );
}

#[test]
fn an_edited_policy_file_takes_effect_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // No policy given to the builder: the data dir's policy.toml is the policy.
    let host = HostBuilder::new(dir.path())
        .worker_exe(binary("plugin-worker"))
        .recovery(recovery(10))
        .build()
        .unwrap();
    host.install(&plugin("word-stats")).unwrap();
    let story = serde_json::to_vec(&stories()[0]).unwrap();
    let call = |host: &Host| host.invoke("word-stats", "analyze", &story).unwrap().result;
    assert_eq!(call(&host).status, Outcome::Ok);

    // The operator accepts no SDK version: the running host decides again and denies.
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "sdk_versions = \">=9\"\n").unwrap();
    let denied = call(&host);
    assert_eq!(denied.status, Outcome::Denied, "{denied:?}");
    assert!(
        denied
            .error
            .as_deref()
            .unwrap()
            .contains("denied by policy"),
        "{denied:?}"
    );

    // A broken edit keeps the policy in force.
    std::fs::write(&policy, "sdk_versions = \">=9\"\nno_such_key = 1\n").unwrap();
    assert_eq!(call(&host).status, Outcome::Denied);

    // Removing the file goes back to the default policy.
    std::fs::remove_file(&policy).unwrap();
    assert_eq!(call(&host).status, Outcome::Ok);
}

#[test]
fn a_policy_section_for_no_installed_plugin_is_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    // `word-stat` is a typo for `word-stats`: its limits would silently not apply.
    std::fs::write(
        dir.path().join("policy.toml"),
        "[plugins.word-stats]\nlimits = { wall_ms = 1000 }\n\n\
         [plugins.word-stat]\nlimits = { wall_ms = 500 }\n",
    )
    .unwrap();
    let word_stats = plugin("word-stats");
    let install = ["install", path(&word_stats)];
    for command in [
        &install[..],
        &["list"],
        &["report"],
        &["report", "word-stats"],
    ] {
        let out = plugin_host(command, dir.path());
        assert_eq!(out.status.code(), Some(0), "{command:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(
                "[plugins.word-stat] section, but no installed plugin is named `word-stat`"
            ),
            "{command:?}: {stderr}"
        );
        assert!(!stderr.contains("`word-stats`"), "{command:?}: {stderr}");
    }
    let built = HostBuilder::new(dir.path()).build().unwrap();
    assert_eq!(built.unmatched_policy_sections().unwrap(), ["word-stat"]);
}

#[test]
fn commands_other_than_install_and_serve_never_create_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let out = plugin_host(&["list"], &missing);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no plugins installed"));
    let out = plugin_host(&["list", "--json"], &missing);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("typo does not exist"));
    for command in [
        &["report"][..],
        &["report", "word-stats"],
        &["audit"],
        &["enable", "word-stats"],
        &["dispatch", "analyze", "--input", "/dev/null"],
    ] {
        let out = plugin_host(command, &missing);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("typo: cannot use the data dir: no such data dir")
                && stderr.contains("plugin-host install"),
            "{command:?}: {stderr}"
        );
    }
    assert!(
        !missing.exists(),
        "a read command created {}",
        missing.display()
    );
    let out = plugin_host(&["install", path(&plugin("word-stats"))], &missing);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(missing.join(host_loader::service::AUDIT_FILE).is_file());
}

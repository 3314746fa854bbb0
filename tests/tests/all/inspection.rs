//! Static inspection through the command line (issue 7): hardening, imports against
//! permissions, signatures; `validate` denying on high-severity (`error`) static findings;
//! `inspect` over several files and directories.

use integration_tests::{binary, path, plugin};
use serde_json::Value;
use std::process::{Command, Output};

fn plugin_host(args: &[&str]) -> Output {
    Command::new(binary("plugin-host"))
        .args(args)
        .output()
        .unwrap()
}

/// `inspect --json` of an example: the report and the exit code.
fn inspect(name: &str) -> (Value, Option<i32>) {
    let out = plugin_host(&["inspect", path(&plugin(name)), "--json"]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code())
}

/// The findings with `code` in a report or decision.
fn with_code<'a>(value: &'a Value, code: &str) -> Vec<&'a Value> {
    value["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .collect()
}

fn evidence(finding: &Value) -> Vec<&str> {
    finding["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect()
}

#[test]
fn each_static_hostile_example_gets_its_finding_and_validate_denies_it() {
    let cases: &[(&str, &str, &str)] = &[
        ("hostile-imports-net", "IMPORT_NETWORK", "connect"),
        (
            "hostile-raw-syscall",
            "IMPORT_RAW_SYSCALL",
            "hostile_raw_syscall::",
        ),
        (
            "hostile-execstack",
            "HARDEN_EXEC_STACK",
            "PT_GNU_STACK flags 0x7",
        ),
        (
            "hostile-bad-signature",
            "SIGNATURE_MISMATCH",
            "__plugin_hook_analyze",
        ),
    ];
    for &(name, code, proof) in cases {
        let (report, exit) = inspect(name);
        assert_eq!(exit, Some(1), "{name}: inspect exits 1 on an error finding");
        let found = with_code(&report, code);
        assert_eq!(found.len(), 1, "{name}: {code} in {report}");
        assert_eq!(found[0]["severity"], "error", "{name}");
        assert!(
            evidence(found[0]).iter().any(|e| e.contains(proof)),
            "{name}: evidence {:?} lacks {proof:?}",
            evidence(found[0])
        );

        let out = plugin_host(&["validate", path(&plugin(name)), "--json"]);
        assert_eq!(out.status.code(), Some(1), "{name}: validate denies");
        let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(decision["decision"], "deny", "{name}");
        let denied = with_code(&decision, code);
        assert_eq!(denied.len(), 1, "{name}: {decision}");
        assert_eq!(denied[0]["severity"], "error");
        assert_eq!(denied[0]["evidence"], found[0]["evidence"]);
        assert!(
            decision["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| *r == found[0]["message"]),
            "{name}: the finding is a deny reason: {decision}"
        );
    }

    // The import finding names exactly the network functions, and says why `net.http` is not
    // enough.
    let (report, _) = inspect("hostile-imports-net");
    let network = with_code(&report, "IMPORT_NETWORK")[0];
    assert_eq!(evidence(network), ["socket", "connect"]);
    assert!(
        network["message"]
            .as_str()
            .unwrap()
            .contains("no `net.connect` permission"),
        "{network}"
    );

    // The signature finding says what the host expects and what the plugin has, and the
    // entry point is not callable.
    let (report, _) = inspect("hostile-bad-signature");
    let message = with_code(&report, "SIGNATURE_MISMATCH")[0]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("host expects (json Story) -> json any")
            && message.contains("plugin has (text) -> text"),
        "{message}"
    );
    assert_eq!(report["entry_points"][0]["callable"], false);
    assert_ne!(
        report["entry_points"][0]["signature_hash"],
        report["entry_points"][0]["expected_hash"]
    );
}

#[test]
fn well_behaved_examples_get_no_warning_from_what_std_imports() {
    for name in [
        "word-stats",
        "story-sanitizer",
        "feed-fetcher",
        "threads-ok",
        "lifecycle-probe",
        "story-hooks-plugin",
    ] {
        let (report, exit) = inspect(name);
        assert_eq!(exit, Some(0), "{name}: {report}");
        let serious: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] != "info")
            .collect();
        assert!(serious.is_empty(), "{name}: {serious:?}");
        // The standard library imports `syscall` itself; the call sites were found and
        // attributed to it.
        let runtime = with_code(&report, "IMPORT_RAW_SYSCALL_RUNTIME");
        assert_eq!(runtime.len(), 1, "{name}: {report}");
        assert!(
            runtime[0]["message"]
                .as_str()
                .unwrap()
                .contains("call sites in std/core/alloc"),
            "{name}: {}",
            runtime[0]
        );
        assert_eq!(
            with_code(&report, "HARDEN_CONSTRUCTORS_RUNTIME").len(),
            1,
            "{name}: frame_dummy and std's argument initialiser"
        );
    }
}

#[test]
fn the_sandbox_examples_are_refused_statically_too() {
    for (name, code, symbol) in [
        ("hostile-net", "IMPORT_NETWORK", "connect"),
        ("hostile-exec", "IMPORT_PROCESS", "execv"),
        ("hostile-fork-bomb", "IMPORT_PROCESS", "fork"),
        ("hostile-setuid", "IMPORT_PRIVILEGE", "setuid"),
        ("hostile-ptrace", "IMPORT_ANTI_DEBUG", "ptrace"),
    ] {
        let (report, _) = inspect(name);
        let found = with_code(&report, code);
        assert_eq!(found.len(), 1, "{name}: {report}");
        assert!(evidence(found[0]).contains(&symbol), "{name}: {}", found[0]);
        assert_eq!(found[0]["severity"], "error");
    }
    // `fork` is covered when the plugin declares process.spawn; its `prctl` is not.
    let (report, _) = inspect("hostile-double-fork");
    assert!(with_code(&report, "IMPORT_PROCESS").is_empty(), "{report}");
    let privilege = with_code(&report, "IMPORT_PRIVILEGE");
    assert_eq!(privilege.len(), 1, "{report}");
    assert!(evidence(privilege[0]).contains(&"prctl"), "{report}");
    let granted = with_code(&report, "IMPORT_GRANTED");
    assert!(
        granted
            .iter()
            .any(|f| evidence(f).contains(&"fork") && f["severity"] == "info"),
        "{report}"
    );
    // A constructor in the plugin's own code is a warning naming the function; it does not
    // deny (the worker is confined before loading), so `validate` allows hostile-ctor.
    let (report, exit) = inspect("hostile-ctor");
    assert_eq!(exit, Some(0));
    let ctor = with_code(&report, "HARDEN_CONSTRUCTOR");
    assert_eq!(ctor.len(), 1, "{report}");
    assert_eq!(ctor[0]["severity"], "warning");
    assert!(
        evidence(ctor[0])
            .iter()
            .any(|e| e.starts_with("hostile_ctor::constructor")),
        "{}",
        ctor[0]
    );
    let out = plugin_host(&["validate", path(&plugin("hostile-ctor")), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(with_code(&decision, "HARDEN_CONSTRUCTOR").len(), 1);
}

#[test]
fn inspect_takes_several_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let word_stats = plugin("word-stats");
    let execstack = plugin("hostile-execstack");
    let out = plugin_host(&[
        "inspect",
        path(&word_stats),
        path(&execstack),
        path(&notes),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2), "a file is not a plugin");
    let entries: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["status"].as_str().unwrap(),
                e["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("plugin", ""),
            ("plugin", ""),
            ("not_a_plugin", "ELF_NOT_ELF")
        ]
    );
    assert_eq!(entries[0]["report"]["manifest"]["name"], "word-stats");
    assert_eq!(
        with_code(&entries[1]["report"], "HARDEN_EXEC_STACK").len(),
        1
    );
    assert!(
        entries[2]["message"]
            .as_str()
            .unwrap()
            .contains("not an ELF file")
    );
    // Without a terminal, no progress line on stderr.
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\r'));

    // Only plugins, one with an error finding: exit 1.
    let out = plugin_host(&["inspect", path(&word_stats), path(&execstack)]);
    assert_eq!(out.status.code(), Some(1));

    // A directory is searched recursively for shared objects, one line per file.
    let nested = dir.path().join("nested");
    std::fs::create_dir(&nested).unwrap();
    std::fs::copy(&word_stats, dir.path().join("libword_stats.so")).unwrap();
    std::fs::copy(&word_stats, nested.join("libcopy.so.1")).unwrap();
    std::fs::write(nested.join("libfake.so"), "not elf").unwrap();
    let out = plugin_host(&["inspect", path(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0]
            .ends_with("libword_stats.so: plugin word-stats 0.1.0: 0 error, 0 warning finding(s)"),
        "{text}"
    );
    assert!(
        lines[1].contains("nested/libcopy.so.1: plugin word-stats"),
        "{text}"
    );
    assert!(
        lines[2].contains("nested/libfake.so: ELF_NOT_ELF: not an ELF file"),
        "{text}"
    );
    assert_eq!(
        lines[3],
        "3 file(s): 2 plugin(s), 0 denied by static findings, 1 not a plugin or unreadable"
    );
    assert!(
        !text.contains("notes.txt"),
        "only shared objects are inspected"
    );
}

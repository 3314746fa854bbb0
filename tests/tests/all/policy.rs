//! Permissions, levels and the policy engine through the command line (issue 4): `validate`,
//! `permissions`, and `run` refusing what the policy denies.

use integration_tests::{binary, path, plugin, stories_path};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn plugin_host(args: &[&str]) -> Output {
    Command::new(binary("plugin-host"))
        .args(args)
        .output()
        .unwrap()
}

/// `validate --json` of an example plugin with extra arguments: the decision and exit code.
fn validate(name: &str, extra: &[&str]) -> (Value, Option<i32>) {
    let so = plugin(name);
    let mut args = vec!["validate", path(&so), "--json"];
    args.extend_from_slice(extra);
    let out = plugin_host(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    let decision = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{name}: not JSON ({e}): {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (decision, out.status.code())
}

/// The findings with `code`, as (severity, message).
fn findings(decision: &Value, code: &str) -> Vec<(String, String)> {
    decision["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn policy_file(dir: &Path, text: &str) -> std::path::PathBuf {
    let file = dir.join("policy.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn permissions_lists_the_catalog_with_risk_scope_and_enforcement() {
    let out = plugin_host(&["permissions", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let catalog: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds = catalog.as_array().unwrap();
    assert_eq!(kinds.len(), plugin_manifest::permission::CATALOG.len());
    for kind in kinds {
        for key in ["id", "risk", "scope", "enforced_by", "description"] {
            assert!(kind.get(key).is_some(), "{kind} lacks {key}");
        }
    }
    let spawn = kinds.iter().find(|k| k["id"] == "process.spawn").unwrap();
    assert_eq!(spawn["risk"], "high");
    let text = plugin_host(&["permissions"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("net.connect"));
}

#[test]
fn greedy_exfil_is_denied_with_every_reason_and_an_acknowledgement_accepts_only_its_combination() {
    let (decision, code) = validate("greedy-exfil", &[]);
    assert_eq!(code, Some(1));
    assert_eq!(decision["decision"], "deny");
    let combinations = findings(&decision, "PERM_DANGEROUS_COMBINATION");
    assert_eq!(combinations.len(), 2, "{combinations:?}");
    assert!(combinations.iter().all(|(severity, _)| severity == "error"));
    let broad = findings(&decision, "PERM_SCOPE_TOO_BROAD");
    let broad: Vec<&str> = broad.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(broad.len(), 2, "{broad:?}");
    assert!(broad[0].contains("net.http:*") && broad[1].contains("fs.write:/"));
    assert_eq!(findings(&decision, "META_SUSPICIOUS_WORD").len(), 1);
    // Every error is a reason.
    assert_eq!(decision["reasons"].as_array().unwrap().len(), 4);

    // Acknowledging exactly one combination accepts that one only; the scopes still deny.
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(
        dir.path(),
        "[plugins.greedy-exfil]\nacknowledge = [[\"user_data.read\", \"net.http\"]]\n",
    );
    let (decision, code) = validate("greedy-exfil", &["--policy", path(&policy)]);
    assert_eq!(code, Some(1));
    let combinations = findings(&decision, "PERM_DANGEROUS_COMBINATION");
    let severities: Vec<&str> = combinations.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(severities, ["error", "info"], "{combinations:?}");
    assert!(combinations[0].1.contains("fs.write + net.http"));
    assert!(combinations[1].1.contains("acknowledged"));
    assert_eq!(findings(&decision, "PERM_SCOPE_TOO_BROAD").len(), 2);
    // An acknowledgement for another plugin, or of a different set, accepts nothing.
    let policy = policy_file(
        dir.path(),
        "[plugins.other-plugin]\nacknowledge = [[\"user_data.read\", \"net.http\"]]\n[plugins.greedy-exfil]\nacknowledge = [[\"user_data.read\", \"net.http\", \"fs.write\"]]\n",
    );
    let (decision, _) = validate("greedy-exfil", &["--policy", path(&policy)]);
    let combinations = findings(&decision, "PERM_DANGEROUS_COMBINATION");
    assert!(
        combinations.iter().all(|(s, _)| s == "error"),
        "{combinations:?}"
    );
    // ... and the one that matches none of the plugin's combinations is pointed out.
    let unused = findings(&decision, "POLICY_ACK_UNUSED");
    assert_eq!(unused.len(), 1, "{unused:?}");
    assert_eq!(unused[0].0, "warning");
    assert!(
        unused[0].1.contains("fs.write + net.http + user_data.read")
            && unused[0]
                .1
                .contains("it has fs.write + net.http; net.http + user_data.read"),
        "{}",
        unused[0].1
    );
}

#[test]
fn the_same_plugin_is_allowed_at_standard_and_denied_at_strict_with_the_reason() {
    let (standard, code) = validate("feed-fetcher", &["--level", "standard"]);
    assert_eq!(code, Some(0), "{standard}");
    assert_eq!(standard["decision"], "allow");
    assert_eq!(standard["level"], "standard");
    let (strict, code) = validate("feed-fetcher", &["--level", "strict"]);
    assert_eq!(code, Some(1));
    assert_eq!(strict["level"], "strict");
    let refused = findings(&strict, "PERM_NOT_ALLOWED_AT_LEVEL");
    assert_eq!(refused.len(), 1);
    assert!(refused[0].1.contains("net.connect:feeds.example.org:443"));
    assert!(refused[0].1.contains("level strict"));
    // Stricter limits come with the stricter level.
    assert!(
        strict["limits"]["memory_bytes"].as_u64() < standard["limits"]["memory_bytes"].as_u64()
    );
    // The policy can set the level per plugin; a plugin that asks for strict stays strict.
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(dir.path(), "[plugins.feed-fetcher]\nlevel = \"strict\"\n");
    let (decision, code) = validate("feed-fetcher", &["--policy", path(&policy)]);
    assert_eq!(
        (decision["decision"].as_str(), code),
        (Some("deny"), Some(1))
    );
    let (word_stats, _) = validate("word-stats", &["--level", "minimal"]);
    assert_eq!(word_stats["level"], "strict");
}

#[test]
fn story_sanitizer_is_allowed_at_standard() {
    let (decision, code) = validate("story-sanitizer", &[]);
    assert_eq!(code, Some(0), "{decision}");
    assert_eq!(decision["decision"], "allow");
    assert!(decision["findings"].as_array().unwrap().is_empty());
}

#[test]
fn policy_roots_hosts_and_sdk_versions_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(dir.path(), "allowed_net_hosts = [\"*.example.net\"]\n");
    let (decision, code) = validate("feed-fetcher", &["--policy", path(&policy)]);
    assert_eq!(code, Some(1));
    assert_eq!(findings(&decision, "PERM_HOST_NOT_ALLOWED").len(), 1);
    let policy = policy_file(dir.path(), "allowed_net_hosts = [\"*.example.org\"]\n");
    assert_eq!(
        validate("feed-fetcher", &["--policy", path(&policy)]).1,
        Some(0)
    );

    let policy = policy_file(dir.path(), "sdk_versions = \">=9\"\n");
    let (decision, code) = validate("word-stats", &["--policy", path(&policy)]);
    assert_eq!(code, Some(1));
    assert_eq!(findings(&decision, "SDK_VERSION_NOT_ACCEPTED").len(), 1);

    let policy = policy_file(
        dir.path(),
        "[plugins.story-sanitizer]\ndeny = [\"fs.read\"]\n",
    );
    let (decision, code) = validate("story-sanitizer", &["--policy", path(&policy)]);
    assert_eq!(code, Some(1));
    assert_eq!(findings(&decision, "PERM_DENIED_BY_POLICY").len(), 1);

    // Per-plugin limits tighten the effective limits.
    let policy = policy_file(
        dir.path(),
        "[plugins.word-stats]\nlimits = { memory_mb = 16, wall_ms = 500 }\n",
    );
    let (decision, _) = validate("word-stats", &["--policy", path(&policy)]);
    assert_eq!(decision["limits"]["memory_bytes"], 16 * 1024 * 1024);
    assert_eq!(decision["limits"]["wall_ms"], 500);
}

#[test]
fn a_malformed_policy_names_the_file_the_key_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        (
            "default_level = \"lenient\"\n",
            "invalid value: string \"lenient\"",
        ),
        (
            "[plugins.word-stats]\nlevle = \"strict\"\n",
            "unknown field `levle`",
        ),
        ("allowed_fs_roots = [\"relative\"]\n", "allowed_fs_roots"),
        ("[plugins.word-stats\n", "TOML parse error"),
    ] {
        let policy = policy_file(dir.path(), text);
        let out = plugin_host(&[
            "validate",
            path(&plugin("word-stats")),
            "--policy",
            path(&policy),
        ]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(path(&policy)), "{stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
    let out = plugin_host(&[
        "validate",
        path(&plugin("word-stats")),
        "--policy",
        "/nonexistent/policy.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/policy.toml"));
}

#[test]
fn run_refuses_a_denied_plugin_without_starting_a_worker() {
    let out = plugin_host(&[
        "run",
        path(&plugin("greedy-exfil")),
        "analyze",
        "--input",
        path(&stories_path()),
        "--jsonl",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 146);
    for line in &lines {
        assert_eq!(line["status"], "denied");
        assert!(line["error"].as_str().unwrap().contains("denied by policy"));
        // No worker ran: no layers, no usage.
        assert_eq!(line["layers"], Value::Array(Vec::new()));
        assert_eq!(line["usage"]["wall_ms"], 0);
    }
}

#[test]
fn story_sanitizer_masks_the_configured_words() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"words": ["frog", "frogs"]}"#).unwrap();
    let out = plugin_host(&[
        "run",
        path(&plugin("story-sanitizer")),
        "analyze",
        "--input",
        path(&stories_path()),
        "--jsonl",
        "--json",
        "--config",
        path(&config),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    let output = &first["output"];
    assert_eq!(output["title"], "The ***** and the Ox");
    let text = output["text"].as_str().unwrap();
    assert!(!text.to_lowercase().contains("frog"), "{text}");
    assert!(output["masked"].as_u64().unwrap() >= 5);
}

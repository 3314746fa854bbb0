//! The policy engine: one reasoned `allow` or `deny` per plugin, before anything runs.
//!
//! Inputs: the manifest (what the plugin asks for), the static inspection report (what the file
//! is), the operator's [`Policy`] and optionally a level given on the command line. Output: a
//! [`Decision`] with the effective level and limits and every finding, each with a stable code,
//! a severity, a message and its evidence. Any `error` finding denies, static inspection's
//! included (see [`crate::inspect::codes`]).
//!
//! The effective level is the stricter of what the plugin asks for and what the operator sets
//! (`--level`, else the policy's level for that plugin, else its `default_level`): a plugin may
//! ask to be confined more, never less.

use super::{Policy, host_allowed, scope_host};
use crate::inspect::{Report, Severity};
use plugin_manifest::level::LevelRules;
use plugin_manifest::{Grant, Limits, Manifest, SecurityLevel};
use serde::Serialize;

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The plugin may run.
    Allow,
    /// It may not; the reasons say why.
    Deny,
}

/// One policy finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyFinding {
    /// Stable code, e.g. `PERM_DANGEROUS_COMBINATION`.
    pub code: &'static str,
    /// `error` denies; `warning` and `info` explain.
    pub severity: Severity,
    /// What is wrong and, where there is one, how to fix it.
    pub message: String,
    /// What in the manifest or report it is about (grants, words, values).
    pub evidence: Vec<String>,
}

/// The decision about one plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The plugin's name.
    pub plugin: String,
    /// `allow` or `deny`.
    pub decision: Verdict,
    /// The level it runs at.
    pub level: SecurityLevel,
    /// How that level was chosen.
    pub level_reason: String,
    /// The level's rules besides limits.
    pub rules: LevelRules,
    /// The effective limits: the tightest of the level, the plugin's request and the policy.
    pub limits: Limits,
    /// The messages of the findings that deny, in order.
    pub reasons: Vec<String>,
    /// Every finding.
    pub findings: Vec<PolicyFinding>,
}

impl Decision {
    /// Whether the plugin may run.
    pub fn allows(&self) -> bool {
        self.decision == Verdict::Allow
    }
}

/// Words that have no business in a legitimate plugin's name or description (matched at the
/// start of a word, case-insensitively).
const SUSPICIOUS_WORDS: &[&str] = &[
    "keylog",
    "miner",
    "cryptomin",
    "backdoor",
    "exploit",
    "stealer",
    "ransom",
    "rootkit",
    "botnet",
    "exfil",
    "trojan",
    "spyware",
];

/// A dangerous combination: one permission kind and the kinds that are dangerous beside it.
struct Combination {
    first: &'static str,
    with: &'static [&'static str],
    /// Only some scopes of the second kind make it dangerous (`None`: any).
    second_scope: Option<fn(&str) -> bool>,
    why: &'static str,
}

const COMBINATIONS: &[Combination] = &[
    Combination {
        first: "fs.write",
        with: &["net.http", "net.connect"],
        second_scope: None,
        why: "it can download and drop files, or send local files out (dropper, exfiltration)",
    },
    Combination {
        first: "user_data.read",
        with: &["net.http", "net.connect"],
        second_scope: None,
        why: "it can send the user's data out (exfiltration)",
    },
    Combination {
        first: "process.spawn",
        with: &["fs.write"],
        second_scope: None,
        why: "it can write something and run it later (persistence)",
    },
    Combination {
        first: "process.spawn",
        with: &["env.read"],
        second_scope: Some(|scope| scope.starts_with("LD_") || scope == "PATH" || scope == "*"),
        why: "it can steer what a spawned process loads (LD_*, PATH)",
    },
];

/// Evaluates `manifest` (with its inspection `report`, if any) against `policy`. `level` is the
/// operator's level from the command line, which overrides the policy's.
pub fn evaluate(
    manifest: &Manifest,
    report: Option<&Report>,
    policy: &Policy,
    level: Option<SecurityLevel>,
) -> Decision {
    let info = &manifest.info;
    let plugin_policy = policy.plugin(&info.name);
    let (operator_level, source) = match (level, plugin_policy.and_then(|p| p.level)) {
        (Some(level), _) => (level, "--level"),
        (None, Some(level)) => (level, "the policy's level for this plugin"),
        (None, None) => (policy.default_level, "the policy's default level"),
    };
    let effective = operator_level.max(info.security_level);
    let level_reason = if effective == info.security_level && effective != operator_level {
        format!(
            "the plugin asks for {}, stricter than {operator_level} ({source})",
            info.security_level
        )
    } else {
        format!(
            "{source}: {operator_level}; the plugin asks for {}",
            info.security_level
        )
    };
    let max = effective.max_limits();
    let mut limits = max.tighten(&info.limits);
    if let Some(plugin_policy) = plugin_policy {
        limits = limits.tighten(&plugin_policy.limits);
    }
    let rules = effective.rules();
    let mut findings = Vec::new();
    let mut add = |code, severity, message: String, evidence: Vec<String>| {
        findings.push(PolicyFinding {
            code,
            severity,
            message,
            evidence,
        })
    };

    // What static inspection found: every `error` finding denies (hardening, imports beyond
    // the grants, signatures); warnings are shown with the decision; info stays in the report.
    if let Some(report) = report {
        for finding in report
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
        {
            add(
                finding.code,
                finding.severity,
                finding.message.clone(),
                finding.evidence.clone(),
            );
        }
    }

    if let Some(accepted) = &policy.sdk_versions {
        let version = &manifest.abi.sdk_version;
        match semver::Version::parse(version) {
            Ok(parsed) if accepted.matches(&parsed) => {}
            _ => add(
                "SDK_VERSION_NOT_ACCEPTED",
                Severity::Error,
                format!(
                    "built with plugin-sdk {version}; the policy accepts {accepted}: rebuild the plugin against an accepted SDK"
                ),
                vec![version.clone()],
            ),
        }
    }

    let excesses = max.excesses(&info.limits);
    if !excesses.is_empty() {
        add(
            "LIMIT_ABOVE_LEVEL",
            Severity::Warning,
            format!(
                "the plugin asks for more than level {effective} allows; it gets the level's maximum: {}",
                excesses.join(", ")
            ),
            excesses,
        );
    }

    let grants = &info.permissions;
    if grants.len() > rules.max_permissions {
        add(
            "PERM_EXCESSIVE",
            Severity::Error,
            format!(
                "{} permissions; level {effective} allows at most {}",
                grants.len(),
                rules.max_permissions
            ),
            grants.iter().map(Grant::to_string).collect(),
        );
    }
    for grant in grants {
        let evidence = vec![grant.to_string()];
        if plugin_policy.is_some_and(|p| p.deny.contains(&grant.kind)) {
            add(
                "PERM_DENIED_BY_POLICY",
                Severity::Error,
                format!("the policy refuses `{}` to this plugin", grant.kind),
                evidence.clone(),
            );
        }
        if let Some(why) = effective.refusal(grant) {
            add(
                "PERM_NOT_ALLOWED_AT_LEVEL",
                Severity::Error,
                why,
                evidence.clone(),
            );
        }
        if let Some(why) = too_broad(grant) {
            add(
                "PERM_SCOPE_TOO_BROAD",
                Severity::Error,
                format!("`{grant}` is too broad: {why}"),
                evidence.clone(),
            );
        } else if let Some(why) = outside_policy(grant, policy) {
            let code = if grant.kind.starts_with("fs.") {
                "PERM_SCOPE_OUTSIDE_ROOTS"
            } else {
                "PERM_HOST_NOT_ALLOWED"
            };
            add(code, Severity::Error, why, evidence);
        }
    }

    // Each acknowledgement as a set (order and repeats do not matter).
    let acknowledgements: Vec<Vec<String>> = plugin_policy
        .map(|p| {
            p.acknowledge
                .iter()
                .map(|ack| {
                    let mut ack = ack.clone();
                    ack.sort();
                    ack.dedup();
                    ack
                })
                .collect()
        })
        .unwrap_or_default();
    let combinations = dangerous_combinations(grants);
    // One that matches none of this plugin's combinations has no effect: likely a mistake
    // (a kind too many or too few, a combination that is not dangerous), so say so.
    for ack in &acknowledgements {
        if !combinations.iter().any(|(kinds, _)| kinds == ack) {
            let has: Vec<String> = combinations
                .iter()
                .map(|(kinds, _)| kinds.join(" + "))
                .collect();
            add(
                "POLICY_ACK_UNUSED",
                Severity::Warning,
                format!(
                    "the policy acknowledges {} for this plugin, which is not one of its dangerous combinations ({}), so it has no effect: an acknowledgement accepts exactly one combination",
                    ack.join(" + "),
                    if has.is_empty() {
                        "it has none".to_string()
                    } else {
                        format!("it has {}", has.join("; "))
                    }
                ),
                ack.clone(),
            );
        }
    }
    for (kinds, why) in combinations {
        let acknowledged = acknowledgements.contains(&kinds);
        let list = kinds.join(" + ");
        if acknowledged {
            add(
                "PERM_DANGEROUS_COMBINATION",
                Severity::Info,
                format!("{list}: {why}; acknowledged by the policy for this plugin"),
                kinds,
            );
        } else {
            add(
                "PERM_DANGEROUS_COMBINATION",
                Severity::Error,
                format!(
                    "{list}: {why}; to accept it, the policy must acknowledge exactly this combination for this plugin: [plugins.{}] acknowledge = [{}]",
                    info.name,
                    format_args!(
                        "[{}]",
                        kinds
                            .iter()
                            .map(|k| format!("\"{k}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                ),
                kinds,
            );
        }
    }

    let words = suspicious_words(&info.name, &info.description);
    if !words.is_empty() {
        add(
            "META_SUSPICIOUS_WORD",
            Severity::Warning,
            format!(
                "name or description contains {}",
                words
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            words,
        );
    }

    let reasons: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.message.clone())
        .collect();
    Decision {
        plugin: info.name.clone(),
        decision: if reasons.is_empty() {
            Verdict::Allow
        } else {
            Verdict::Deny
        },
        level: effective,
        level_reason,
        rules,
        limits,
        reasons,
        findings,
    }
}

/// Why a grant's scope is too broad to accept at any level, if it is.
fn too_broad(grant: &Grant) -> Option<&'static str> {
    let scope = grant.scope.as_deref()?;
    let wildcard = |part: &str| part.is_empty() || part.chars().all(|c| c == '*');
    match grant.kind.as_str() {
        "fs.read" | "fs.write" if scope.split('/').all(wildcard) => Some(
            "it names the whole filesystem or the whole data dir by wildcard; name the files or a directory",
        ),
        "net.http" | "net.connect" => {
            let host = scope_host(grant).unwrap_or(scope);
            let labels_after_wildcard = host.strip_prefix("*.").map(|d| d.split('.').count());
            if host == "*" || labels_after_wildcard.is_some_and(|labels| labels < 2) {
                Some("it names every host (or a whole top-level domain); name the hosts")
            } else {
                None
            }
        }
        "env.read" if scope == "*" => Some("it names every environment variable"),
        "process.spawn" => {
            let command = scope.rsplit('/').next().unwrap_or(scope);
            matches!(
                command,
                "*" | "sh" | "bash" | "dash" | "zsh" | "env" | "busybox"
            )
            .then_some("a shell or `*` runs anything; name the program")
        }
        _ => None,
    }
}

/// Why a grant names something the policy does not allow, if it does.
fn outside_policy(grant: &Grant, policy: &Policy) -> Option<String> {
    let scope = grant.scope.as_deref()?;
    match grant.kind.as_str() {
        "fs.read" | "fs.write" if scope.starts_with('/') => {
            let inside = policy
                .allowed_fs_roots
                .iter()
                .any(|root| std::path::Path::new(scope).starts_with(root));
            (!inside).then(|| {
                format!(
                    "`{grant}` names a path outside the plugin's data dir and outside the policy's allowed_fs_roots ({})",
                    if policy.allowed_fs_roots.is_empty() {
                        "none".to_string()
                    } else {
                        policy
                            .allowed_fs_roots
                            .iter()
                            .map(|r| r.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )
            })
        }
        "net.http" | "net.connect" if !policy.allowed_net_hosts.is_empty() => {
            let host = scope_host(grant)?;
            (!host_allowed(&policy.allowed_net_hosts, host)).then(|| {
                format!(
                    "`{grant}` names host `{host}`, which is not in the policy's allowed_net_hosts ({})",
                    policy.allowed_net_hosts.join(", ")
                )
            })
        }
        _ => None,
    }
}

/// Every dangerous combination present, as the sorted kinds it is made of, with the reason.
fn dangerous_combinations(grants: &[Grant]) -> Vec<(Vec<String>, &'static str)> {
    let mut found: Vec<(Vec<String>, &'static str)> = Vec::new();
    for rule in COMBINATIONS {
        if !grants.iter().any(|g| g.kind == rule.first) {
            continue;
        }
        for second in grants
            .iter()
            .filter(|g| rule.with.contains(&g.kind.as_str()))
        {
            if let Some(scope_matches) = rule.second_scope
                && !second.scope.as_deref().is_some_and(scope_matches)
            {
                continue;
            }
            let mut kinds = vec![rule.first.to_string(), second.kind.clone()];
            kinds.sort();
            if !found.iter().any(|(k, _)| *k == kinds) {
                found.push((kinds, rule.why));
            }
        }
    }
    found
}

/// The suspicious words in a name and description.
fn suspicious_words(name: &str, description: &str) -> Vec<String> {
    let text = format!("{name} {description}").to_lowercase();
    let mut found = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if SUSPICIOUS_WORDS.iter().any(|stem| word.starts_with(stem))
            && !found.iter().any(|f: &String| f == word)
        {
            found.push(word.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(list: &[&str]) -> Vec<Grant> {
        list.iter().map(|g| Grant::parse(g).unwrap()).collect()
    }

    #[test]
    fn combinations_are_found_once_each_with_their_kinds() {
        let found = dangerous_combinations(&grants(&[
            "user_data.read:contacts",
            "net.http:*",
            "fs.write:/",
            "net.connect:a.example.org:443",
        ]));
        let kinds: Vec<Vec<String>> = found.into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            kinds,
            [
                vec!["fs.write", "net.http"],
                vec!["fs.write", "net.connect"],
                vec!["net.http", "user_data.read"],
                vec!["net.connect", "user_data.read"],
            ]
        );
        assert!(
            dangerous_combinations(&grants(&[
                "process.spawn:/usr/bin/convert",
                "env.read:HOME"
            ]))
            .is_empty()
        );
        assert_eq!(
            dangerous_combinations(&grants(&[
                "process.spawn:/usr/bin/convert",
                "env.read:LD_PRELOAD"
            ]))
            .len(),
            1
        );
    }

    #[test]
    fn broad_scopes() {
        for broad in [
            "fs.read:/",
            "fs.write:*",
            "fs.read:/**",
            "net.http:*",
            "net.http:*.com",
            "net.connect:*:443",
            "env.read:*",
            "process.spawn:/bin/sh",
        ] {
            assert!(
                too_broad(&Grant::parse(broad).unwrap()).is_some(),
                "{broad}"
            );
        }
        for narrow in [
            "fs.read:data/words.txt",
            "fs.read:/srv/stories/*.txt",
            "net.http:*.example.org",
            "net.http:api.example.org:443",
            "env.read:LANG",
            "process.spawn:/usr/bin/convert",
        ] {
            assert!(
                too_broad(&Grant::parse(narrow).unwrap()).is_none(),
                "{narrow}"
            );
        }
    }

    #[test]
    fn suspicious_words_match_word_starts() {
        assert_eq!(suspicious_words("greedy-exfil", "Sends data"), ["exfil"]);
        assert_eq!(
            suspicious_words("story-miner", "a Keylogger"),
            ["miner", "keylogger"]
        );
        assert!(suspicious_words("word-stats", "Counts words; examines stories").is_empty());
    }
}

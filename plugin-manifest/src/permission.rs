//! The permission catalog and scoped grants (SPEC §4).
//!
//! A grant is written `kind` or `kind:scope`, e.g. `fs.read:data/words.txt` or
//! `net.http:example.org:443`. This module knows each kind's scope syntax and risk; deciding
//! whether a set of grants is acceptable is the host's policy engine's job, not this module's.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How much harm a permission can do in the wrong hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Harmless on its own.
    Low,
    /// Reaches data or the network in a bounded way.
    Medium,
    /// Can change the system or move data out.
    High,
}

/// What a permission's scope must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeSyntax {
    /// No scope allowed.
    None,
    /// A relative path or glob inside the plugin's data dir, or an absolute one under a
    /// policy-allowed root.
    Path,
    /// `host` or `host:port`.
    Host,
    /// `host:port`, the port required.
    HostPort,
    /// An environment variable name (`[A-Za-z_][A-Za-z0-9_]*`, a trailing `*` allowed).
    EnvVar,
    /// A command name or absolute path.
    Command,
    /// A record kind (`[a-z][a-z0-9_]*`).
    RecordKind,
}

/// One entry of the permission catalog.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PermissionKind {
    /// Stable identifier, e.g. `fs.read`.
    pub id: &'static str,
    /// What it lets a plugin do.
    pub description: &'static str,
    /// What its scope looks like.
    pub scope: ScopeSyntax,
    /// How risky it is.
    pub risk: Risk,
    /// The mechanism that enforces it.
    pub enforced_by: &'static str,
}

/// The catalog: every permission a plugin can ask for.
pub const CATALOG: &[PermissionKind] = &[
    PermissionKind {
        id: "fs.read",
        description: "read files inside the plugin's data dir or a policy-allowed root",
        scope: ScopeSyntax::Path,
        risk: Risk::Medium,
        enforced_by: "broker path checks + Landlock",
    },
    PermissionKind {
        id: "fs.write",
        description: "create and write files inside the plugin's data dir or a policy-allowed root",
        scope: ScopeSyntax::Path,
        risk: Risk::High,
        enforced_by: "broker path checks + Landlock",
    },
    PermissionKind {
        id: "net.http",
        description: "HTTP requests to the named host, performed by the host on the plugin's behalf",
        scope: ScopeSyntax::Host,
        risk: Risk::Medium,
        enforced_by: "broker",
    },
    PermissionKind {
        id: "net.connect",
        description: "direct TCP connections to host:port from inside the worker",
        scope: ScopeSyntax::HostPort,
        risk: Risk::High,
        enforced_by: "seccomp + Landlock network rules",
    },
    PermissionKind {
        id: "db.read",
        description: "query the plugin's private SQLite store",
        scope: ScopeSyntax::None,
        risk: Risk::Low,
        enforced_by: "broker",
    },
    PermissionKind {
        id: "db.write",
        description: "modify the plugin's private SQLite store",
        scope: ScopeSyntax::None,
        risk: Risk::Medium,
        enforced_by: "broker",
    },
    PermissionKind {
        id: "env.read",
        description: "read the named environment variable of the host",
        scope: ScopeSyntax::EnvVar,
        risk: Risk::Low,
        enforced_by: "broker",
    },
    PermissionKind {
        id: "process.spawn",
        description: "execute the named command",
        scope: ScopeSyntax::Command,
        risk: Risk::High,
        enforced_by: "seccomp (exec allowed only with it)",
    },
    PermissionKind {
        id: "user_data.read",
        description: "read the user's records of the named kind",
        scope: ScopeSyntax::RecordKind,
        risk: Risk::Medium,
        enforced_by: "broker",
    },
    PermissionKind {
        id: "user_data.write",
        description: "modify the user's records of the named kind",
        scope: ScopeSyntax::RecordKind,
        risk: Risk::High,
        enforced_by: "broker",
    },
    PermissionKind {
        id: "notify",
        description: "send a notification to the user",
        scope: ScopeSyntax::None,
        risk: Risk::Low,
        enforced_by: "broker",
    },
];

/// Looks a permission kind up by id.
pub fn kind(id: &str) -> Option<&'static PermissionKind> {
    CATALOG.iter().find(|kind| kind.id == id)
}

/// A permission as a plugin asks for it: a catalog kind and an optional scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Grant {
    /// The catalog id, e.g. `fs.read`.
    pub kind: String,
    /// The scope, e.g. `data/words.txt`; `None` for kinds without one.
    pub scope: Option<String>,
}

impl Grant {
    /// Parses `kind` or `kind:scope`, checking the kind against the catalog and the scope
    /// against the kind's syntax. The error says what would be accepted.
    pub fn parse(text: &str) -> Result<Grant, String> {
        let (id, scope) = match text.split_once(':') {
            Some((id, scope)) => (id, Some(scope)),
            None => (text, None),
        };
        let Some(kind) = kind(id) else {
            let known: Vec<&str> = CATALOG.iter().map(|k| k.id).collect();
            return Err(format!(
                "unknown permission `{id}`: known permissions are {}",
                known.join(", ")
            ));
        };
        let scope = match (kind.scope, scope) {
            (ScopeSyntax::None, None) => None,
            (ScopeSyntax::None, Some(scope)) => {
                return Err(format!(
                    "permission `{id}` takes no scope, but `{scope}` was given: write `{id}`"
                ));
            }
            (_, None) | (_, Some("")) => {
                return Err(format!(
                    "permission `{id}` needs a scope: write `{id}:{}`",
                    scope_example(kind.scope)
                ));
            }
            (syntax, Some(scope)) => {
                check_scope(syntax, scope).map_err(|why| {
                    format!(
                        "malformed scope `{scope}` for `{id}`: {why} (example: `{id}:{}`)",
                        scope_example(syntax)
                    )
                })?;
                Some(scope.to_string())
            }
        };
        Ok(Grant {
            kind: id.to_string(),
            scope,
        })
    }

    /// The catalog entry of this grant's kind.
    pub fn catalog_entry(&self) -> Option<&'static PermissionKind> {
        kind(&self.kind)
    }
}

fn scope_example(syntax: ScopeSyntax) -> &'static str {
    match syntax {
        ScopeSyntax::None => "",
        ScopeSyntax::Path => "data/words.txt",
        ScopeSyntax::Host => "api.example.org",
        ScopeSyntax::HostPort => "db.example.org:5432",
        ScopeSyntax::EnvVar => "STORY_LOCALE",
        ScopeSyntax::Command => "/usr/bin/convert",
        ScopeSyntax::RecordKind => "reading_history",
    }
}

fn check_scope(syntax: ScopeSyntax, scope: &str) -> Result<(), &'static str> {
    let printable = scope.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if !printable {
        return Err("it contains whitespace or control characters");
    }
    match syntax {
        ScopeSyntax::None => Err("no scope is allowed"),
        ScopeSyntax::Path => {
            if scope.split('/').any(|part| part == "..") {
                Err("`..` components are not allowed")
            } else {
                Ok(())
            }
        }
        ScopeSyntax::Host => check_host_port(scope, false),
        ScopeSyntax::HostPort => check_host_port(scope, true),
        ScopeSyntax::EnvVar => {
            let name = scope.strip_suffix('*').unwrap_or(scope);
            let mut chars = name.chars();
            let first_ok = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            if (first_ok || name.is_empty() && scope == "*")
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                Ok(())
            } else {
                Err(
                    "an environment variable name is letters, digits and `_`, optionally ending in `*`",
                )
            }
        }
        ScopeSyntax::Command => Ok(()),
        ScopeSyntax::RecordKind => {
            let mut chars = scope.chars();
            if chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                Ok(())
            } else {
                Err("a record kind is lowercase letters, digits and `_`")
            }
        }
    }
}

fn check_host_port(scope: &str, port_required: bool) -> Result<(), &'static str> {
    let (host, port) = match scope.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (scope, None),
    };
    if let Some(port) = port {
        if port != "*" && port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err("the port must be a number from 1 to 65535 or `*`");
        }
    } else if port_required {
        return Err("a port is required");
    }
    let host_ok = host == "*"
        || (!host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && (label == "*"
                        || label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            }));
    if host_ok {
        Ok(())
    } else {
        Err("the host must be a DNS name, an IPv4 address or `*`")
    }
}

impl TryFrom<String> for Grant {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Grant::parse(&text)
    }
}

impl From<Grant> for String {
    fn from(grant: Grant) -> String {
        grant.to_string()
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            Some(scope) => write!(f, "{}:{scope}", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grants_with_and_without_scope() {
        assert_eq!(Grant::parse("notify").unwrap().scope, None);
        let grant = Grant::parse("fs.read:data/words.txt").unwrap();
        assert_eq!(
            (grant.kind.as_str(), grant.scope.as_deref()),
            ("fs.read", Some("data/words.txt"))
        );
        assert_eq!(
            Grant::parse("net.http:127.0.0.1:8080").unwrap().to_string(),
            "net.http:127.0.0.1:8080"
        );
    }

    #[test]
    fn rejects_bad_grants_with_a_hint() {
        assert!(
            Grant::parse("fs.delete:x")
                .unwrap_err()
                .contains("known permissions are")
        );
        assert!(
            Grant::parse("fs.read")
                .unwrap_err()
                .contains("needs a scope")
        );
        assert!(
            Grant::parse("notify:x")
                .unwrap_err()
                .contains("takes no scope")
        );
        assert!(Grant::parse("fs.read:../etc").unwrap_err().contains("`..`"));
        assert!(
            Grant::parse("net.connect:example.org")
                .unwrap_err()
                .contains("port is required")
        );
        assert!(
            Grant::parse("net.http:exa mple")
                .unwrap_err()
                .contains("whitespace")
        );
        assert!(
            Grant::parse("env.read:1X")
                .unwrap_err()
                .contains("environment variable")
        );
    }

    #[test]
    fn catalog_ids_are_unique() {
        let mut ids: Vec<_> = CATALOG.iter().map(|k| k.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CATALOG.len());
    }
}

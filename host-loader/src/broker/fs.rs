//! Brokered file access: `fs.read` and `fs.write`, resolved beneath a root the plugin may use.
//!
//! A path is relative to the plugin's data dir, or absolute under one of the policy's allowed
//! roots. It is checked in two ways, and both must agree:
//! - **lexically**, against the grants: no `..` component, not the host's reserved
//!   [`RESERVED_DIR`], and some granted scope covers it. A scope names a file or directory,
//!   with `*` and `?` matching within one component; a scope covers its own path and
//!   everything beneath it (as Landlock does). Then the level's file extensions and size.
//! - **by the kernel**, when opening: `openat2` from the root's descriptor with
//!   `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`. No symbolic link is
//!   followed anywhere in the path, and nothing resolves outside the root, whatever the
//!   plugin (or anyone) does to the tree between the check and the open: there is no window.
//!
//! A path that breaks a rule is `Denied` and a violation; one that simply does not exist is
//! `NotFound`.

use super::{Broker, MAX_REPLY_BYTES, Refusal};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;
use plugin_manifest::broker::ErrorKind;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The directory inside each data dir that belongs to the host (the plugin's SQLite store).
pub const RESERVED_DIR: &str = ".plugin-host";

/// Most entries a listing returns.
pub const MAX_LIST_ENTRIES: usize = 10_000;

/// A path split into its root and the components beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Located {
    root: PathBuf,
    components: Vec<String>,
}

/// Splits `path` into a root and components, refusing `..`, the reserved directory, and
/// absolute paths outside every allowed root.
fn locate(data_dir: &Path, roots: &[PathBuf], path: &str) -> Result<Located, Refusal> {
    if path.is_empty() || path.contains('\0') || path.len() > 4096 {
        return Err(Refusal::fails(
            ErrorKind::Invalid,
            format!("`{}` is not a usable path", path.escape_debug()),
        ));
    }
    let components: Vec<String> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .map(str::to_string)
        .collect();
    if components.iter().any(|part| part == "..") {
        return Err(Refusal::denied(
            "path",
            path.to_string(),
            format!("{path}: `..` components are not allowed"),
        ));
    }
    if !path.starts_with('/') {
        if components
            .first()
            .is_some_and(|first| first == RESERVED_DIR)
        {
            return Err(Refusal::denied(
                "path",
                path.to_string(),
                format!("{path}: `{RESERVED_DIR}` belongs to the host"),
            ));
        }
        return Ok(Located {
            root: data_dir.to_path_buf(),
            components,
        });
    }
    // The longest allowed root that is a prefix of the path, component by component.
    let best = roots
        .iter()
        .filter_map(|root| {
            let parts: Vec<String> = root
                .components()
                .filter_map(|c| match c {
                    std::path::Component::Normal(part) => Some(part.to_string_lossy().into()),
                    _ => None,
                })
                .collect();
            components
                .starts_with(&parts)
                .then_some((root, parts.len()))
        })
        .max_by_key(|(_, len)| *len);
    match best {
        Some((root, len)) => Ok(Located {
            root: root.clone(),
            components: components[len..].to_vec(),
        }),
        None => Err(Refusal::denied(
            "path",
            path.to_string(),
            format!("{path}: outside the plugin's data dir and every root the policy allows"),
        )),
    }
}

/// `*` matches any run of characters, `?` one character; everything else is literal.
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some('?') => {
                pi += 1;
                ni += 1;
            }
            Some(c) if *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether `scope` covers `target`: same root, and the scope's components match the target's
/// first components.
fn covers(scope: &Located, target: &Located) -> bool {
    scope.root == target.root
        && scope.components.len() <= target.components.len()
        && scope
            .components
            .iter()
            .zip(&target.components)
            .all(|(pattern, part)| glob_match(pattern, part))
}

/// The granted scopes of `kind`, located.
fn scopes(broker: &Broker, kind: &str) -> Vec<Located> {
    let config = broker.config();
    broker
        .granted(kind)
        .filter_map(|grant| grant.scope.as_deref())
        .filter_map(|scope| locate(&config.data_dir, &config.allowed_fs_roots, scope).ok())
        .collect()
}

fn not_granted(kind: &str, path: &str) -> Refusal {
    Refusal::denied(
        "path",
        path.to_string(),
        format!("{path}: not covered by any `{kind}` scope granted to the plugin"),
    )
}

/// The level's extension rule and size limit for a file.
fn check_file(broker: &Broker, path: &str, located: &Located, size: u64) -> Result<(), Refusal> {
    let config = broker.config();
    let allowed = config.level.rules().allowed_extensions;
    let name = located.components.last().map_or("", String::as_str);
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    if !allowed.contains(&"*") && !allowed.contains(&extension.as_str()) {
        return Err(Refusal::denied(
            "extension",
            path.to_string(),
            format!(
                "{path}: files ending `.{extension}` are not allowed at level `{}` (allowed: {})",
                config.level,
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            ),
        ));
    }
    let max = max_size(broker);
    if size > max {
        return Err(Refusal::denied(
            "file_size",
            format!("{path}: {size} bytes"),
            format!("{path}: {size} bytes is more than the {max}-byte limit"),
        ));
    }
    Ok(())
}

fn max_size(broker: &Broker) -> u64 {
    broker
        .config()
        .limits
        .max_file_size_bytes
        .min(MAX_REPLY_BYTES)
}

/// Opens `located` beneath its root; symbolic links and escapes are refused by the kernel.
fn open_beneath(
    located: &Located,
    path: &str,
    flags: OFlag,
    mode: Mode,
) -> Result<OwnedFd, Refusal> {
    let root = nix::fcntl::open(
        &located.root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Refusal::fails(
            ErrorKind::NotFound,
            format!(
                "{path}: the directory {} is not available: {e}",
                located.root.display()
            ),
        )
    })?;
    let relative = if located.components.is_empty() {
        ".".to_string()
    } else {
        located.components.join("/")
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .mode(mode)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    openat2(&root, relative.as_str(), how).map_err(|errno| match errno {
        nix::errno::Errno::ENOENT => Refusal::fails(
            ErrorKind::NotFound,
            format!("{path}: no such file or directory"),
        ),
        nix::errno::Errno::EXDEV | nix::errno::Errno::ELOOP => Refusal::denied(
            "path",
            path.to_string(),
            format!("{path}: a symbolic link or an escape from the root is not followed"),
        ),
        nix::errno::Errno::EISDIR | nix::errno::Errno::ENOTDIR => Refusal::fails(
            ErrorKind::Invalid,
            format!("{path}: {}", std::io::Error::from(errno)),
        ),
        other => Refusal::fails(
            ErrorKind::Failed,
            format!("{path}: {}", std::io::Error::from(other)),
        ),
    })
}

/// Reads a whole regular file.
pub(crate) fn read(broker: &Broker, path: &str) -> Result<Vec<u8>, Refusal> {
    let config = broker.config();
    let located = locate(&config.data_dir, &config.allowed_fs_roots, path)?;
    if !scopes(broker, "fs.read")
        .iter()
        .any(|s| covers(s, &located))
    {
        return Err(not_granted("fs.read", path));
    }
    check_file(broker, path, &located, 0)?;
    let fd = open_beneath(&located, path, OFlag::O_RDONLY, Mode::empty())?;
    let mut file = std::fs::File::from(fd);
    let metadata = file
        .metadata()
        .map_err(|e| Refusal::fails(ErrorKind::Failed, format!("{path}: {e}")))?;
    if !metadata.is_file() {
        return Err(Refusal::fails(
            ErrorKind::Invalid,
            format!("{path}: not a regular file"),
        ));
    }
    check_file(broker, path, &located, metadata.len())?;
    let max = max_size(broker);
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // The file may grow after fstat: never read more than the limit allows.
    (&mut file)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Refusal::fails(ErrorKind::Failed, format!("{path}: {e}")))?;
    check_file(broker, path, &located, bytes.len() as u64)?;
    Ok(bytes)
}

/// Creates or replaces a file (its directory must exist).
pub(crate) fn write(broker: &Broker, path: &str, contents: &[u8]) -> Result<(), Refusal> {
    let config = broker.config();
    let located = locate(&config.data_dir, &config.allowed_fs_roots, path)?;
    if !scopes(broker, "fs.write")
        .iter()
        .any(|s| covers(s, &located))
    {
        return Err(not_granted("fs.write", path));
    }
    if located.components.is_empty() {
        return Err(Refusal::fails(
            ErrorKind::Invalid,
            format!("{path}: a directory, not a file"),
        ));
    }
    check_file(broker, path, &located, contents.len() as u64)?;
    let fd = open_beneath(
        &located,
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
        Mode::from_bits_truncate(0o644),
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(contents)
        .and_then(|()| file.sync_data())
        .map_err(|e| Refusal::fails(ErrorKind::Failed, format!("{path}: {e}")))
}

/// Lists a directory: everything in it when a scope covers the directory, else only the
/// entries a scope names directly inside it (`data/*.txt` lets `data` be listed, showing only
/// what matches).
pub(crate) fn list(broker: &Broker, path: &str) -> Result<Vec<String>, Refusal> {
    let config = broker.config();
    let located = locate(&config.data_dir, &config.allowed_fs_roots, path)?;
    let scopes = scopes(broker, "fs.read");
    let whole = scopes.iter().any(|s| covers(s, &located));
    let patterns: Vec<&String> = scopes
        .iter()
        .filter(|s| {
            s.root == located.root
                && s.components.len() == located.components.len() + 1
                && s.components
                    .iter()
                    .zip(&located.components)
                    .all(|(pattern, part)| glob_match(pattern, part))
        })
        .filter_map(|s| s.components.last())
        .collect();
    if !whole && patterns.is_empty() {
        return Err(not_granted("fs.read", path));
    }
    let fd = open_beneath(
        &located,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )?;
    // The descriptor is already resolved beneath the root; reading it through /proc follows
    // nothing the plugin controls.
    let entries = std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| Refusal::fails(ErrorKind::Failed, format!("{path}: {e}")))?;
    let at_data_root = located.root == config.data_dir && located.components.is_empty();
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if at_data_root && name == RESERVED_DIR {
            continue;
        }
        if whole || patterns.iter().any(|pattern| glob_match(pattern, &name)) {
            names.push(name);
            if names.len() > MAX_LIST_ENTRIES {
                return Err(Refusal::fails(
                    ErrorKind::TooLarge,
                    format!("{path}: more than {MAX_LIST_ENTRIES} entries"),
                ));
            }
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ask, broker_with};
    use super::*;
    use plugin_manifest::broker::{Reply, Request};

    #[test]
    fn globs_match_within_one_component() {
        assert!(glob_match("*.txt", "words.txt"));
        assert!(glob_match("w?rds.txt", "words.txt"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("*.txt", "words.csv"));
        assert!(!glob_match("words", "words.txt"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    fn read(broker: &mut Broker, path: &str) -> Result<Reply, plugin_manifest::broker::Error> {
        ask(broker, Request::ReadFile { path: path.into() }).expect("the call goes on")
    }

    #[test]
    fn reads_only_what_a_scope_covers_and_never_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("words.txt"), "wolf\nfox\n").unwrap();
        std::fs::write(data.join("sub/notes.txt"), "n").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink("../secret.txt", data.join("link.txt")).unwrap();
        std::os::unix::fs::symlink("words.txt", data.join("inner-link.txt")).unwrap();
        let mut broker = broker_with(&["fs.read:data"], dir.path());

        assert_eq!(
            read(&mut broker, "data/words.txt"),
            Ok(Reply::Bytes(b"wolf\nfox\n".to_vec()))
        );
        assert_eq!(
            read(&mut broker, "./data//sub/notes.txt"),
            Ok(Reply::Bytes(b"n".to_vec()))
        );
        for (path, rule) in [
            ("data/../secret.txt", "path"),
            ("secret.txt", "path"),
            ("data/link.txt", "path"),
            ("data/inner-link.txt", "path"),
            ("/etc/passwd", "path"),
            (".plugin-host/store.sqlite", "path"),
        ] {
            let error = read(&mut broker, path).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Denied, "{path}: {error:?}");
            let call = broker.take_call();
            assert_eq!(call.violations.len(), 1, "{path}");
            assert_eq!(call.violations[0].rule, rule, "{path}");
        }
        let missing = read(&mut broker, "data/none.txt").unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
        assert!(broker.take_call().violations.is_empty());
    }

    #[test]
    fn extension_and_size_follow_the_level() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tool.sh"), "#!/bin/sh").unwrap();
        std::fs::write(dir.path().join("big.txt"), vec![b'x'; 2048]).unwrap();
        let mut broker = broker_with(&["fs.read:*"], dir.path());
        let error = read(&mut broker, "tool.sh").unwrap_err();
        assert!(
            error
                .message
                .contains("`.sh` are not allowed at level `standard`"),
            "{error:?}"
        );
        assert_eq!(broker.take_call().violations[0].rule, "extension");
        broker.config.limits.max_file_size_bytes = 1024;
        let error = read(&mut broker, "big.txt").unwrap_err();
        assert!(
            error.message.contains("more than the 1024-byte limit"),
            "{error:?}"
        );
        assert_eq!(broker.take_call().violations[0].rule, "file_size");
    }

    #[test]
    fn writes_and_listings_respect_their_scopes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("b.csv"), "b").unwrap();
        std::fs::create_dir(dir.path().join(RESERVED_DIR)).unwrap();
        let mut broker = broker_with(&["fs.write:out", "fs.read:*.txt"], dir.path());
        let write = |broker: &mut Broker, path: &str| {
            ask(
                broker,
                Request::WriteFile {
                    path: path.into(),
                    contents: b"hello".to_vec(),
                },
            )
            .unwrap()
        };
        assert_eq!(write(&mut broker, "out/report.txt"), Ok(Reply::Done));
        assert_eq!(
            std::fs::read(dir.path().join("out/report.txt")).unwrap(),
            b"hello"
        );
        assert_eq!(
            write(&mut broker, "a.txt").unwrap_err().kind,
            ErrorKind::Denied
        );
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"a");
        // `*.txt` lets the data dir be listed, showing only what matches.
        let listed = ask(&mut broker, Request::ListDir { path: ".".into() }).unwrap();
        assert_eq!(listed, Ok(Reply::Names(vec!["a.txt".into()])));
        let denied = ask(&mut broker, Request::ListDir { path: "out".into() }).unwrap();
        assert_eq!(denied.unwrap_err().kind, ErrorKind::Denied);
    }

    #[test]
    fn absolute_paths_only_under_allowed_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("story.txt"), "once").unwrap();
        let scope = format!("fs.read:{}", root.path().display());
        let mut broker = broker_with(&[&scope], dir.path());
        let path = root.path().join("story.txt");
        let path = path.to_str().unwrap();
        assert_eq!(read(&mut broker, path).unwrap_err().kind, ErrorKind::Denied);
        broker.config.allowed_fs_roots = vec![root.path().to_path_buf()];
        assert_eq!(read(&mut broker, path), Ok(Reply::Bytes(b"once".to_vec())));
    }
}

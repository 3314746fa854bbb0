//! Host side of confinement: what a worker is asked to apply ([`plan`]), whether what it did
//! apply is enough for the plugin's level ([`refusal`]), and its private temporary directory
//! ([`TempDir`]).

use super::WorkerOptions;
use crate::plugin::Plugin;
use crate::sandbox::landlock::LandlockSpec;
use crate::sandbox::seccomp::SyscallGrants;
use crate::sandbox::{Confinement, Layer, identity};
use plugin_manifest::SecurityLevel;
use std::io;
use std::path::{Path, PathBuf};

/// The confinement for `plugin`: everything this host can apply, opened only as far as the
/// plugin's grants say, minus the layers `options.leave_out` names.
pub fn plan(plugin: &Plugin, options: &WorkerOptions, temp_dir: &TempDir) -> Confinement {
    let grants = &plugin.manifest().info.permissions;
    let has = |kind: &str| grants.iter().any(|g| g.kind == kind);
    let syscalls = SyscallGrants {
        spawn: has("process.spawn"),
        net: has("net.connect"),
    };
    // Files in `fs.*` scopes are reached through the broker only (which resolves, checks and
    // counts each access), so Landlock opens nothing of the data dir to the worker itself.
    let read = plugin.libraries().to_vec();
    let write = vec![temp_dir.path().to_path_buf()];
    let tcp_connect = grants
        .iter()
        .filter(|g| g.kind == "net.connect")
        .filter_map(|g| g.scope.as_deref())
        .filter_map(|scope| scope.rsplit_once(':')?.1.parse().ok())
        .collect();
    let left_out = |layer: &str| options.leave_out.iter().any(|l| l == layer);
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    Confinement {
        drop_to: (root && !left_out(Layer::UID_DROP)).then_some(identity::UNPRIVILEGED_ID),
        namespaces: (!left_out(Layer::NAMESPACES)).then_some(!syscalls.net),
        landlock: (!left_out(Layer::LANDLOCK)).then_some(LandlockSpec {
            read,
            write,
            tcp_connect,
        }),
        seccomp: (!left_out(Layer::SECCOMP)).then_some(syscalls),
        temp_dir: Some(temp_dir.path().to_path_buf()),
        temp_bytes: options.limits.max_file_size_bytes.max(1024 * 1024),
    }
}

/// The plugin's data dir: the one in `options`, else the host's working directory.
pub fn data_dir(options: &WorkerOptions) -> PathBuf {
    options
        .data_dir
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Why a worker with `layers` may not run a plugin at `level`, naming each required layer
/// that is missing (with the worker's reason, when it gave one); `None` if it may.
pub fn refusal(
    level: SecurityLevel,
    layers: &[String],
    missing: &[(String, String)],
) -> Option<String> {
    let absent: Vec<String> = level
        .rules()
        .required_layers
        .iter()
        .filter(|required| !layers.iter().any(|l| l == *required))
        .map(
            |required| match missing.iter().find(|(layer, _)| layer == required) {
                Some((_, why)) => format!("`{required}` ({why})"),
                None => format!("`{required}` (not available on this host)"),
            },
        )
        .collect();
    if absent.is_empty() {
        return None;
    }
    Some(format!(
        "security level `{level}` requires enforcement layers this worker does not have: {}; \
         run the plugin at a lower level (policy file or --level) only if you accept that, or \
         run the host where the layer is available",
        absent.join(", ")
    ))
}

/// A worker's private temporary directory, `$TMPDIR/plugin-worker-<host pid>-XXXXXX`, owned by
/// the worker's uid; removed (with anything the worker left in it) when dropped. Inside the
/// worker it is usually covered by a tmpfs of the worker's own, so it stays empty on the host's
/// side.
///
/// The name is made by `mkdtemp`: created atomically and unpredictable, so neither a directory
/// left by a killed host whose pid came round again nor one planted by another user in a shared
/// `/tmp` can collide with it or be adopted by it.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Makes a fresh directory, mode 0700.
    pub fn create() -> io::Result<TempDir> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| remove_stale_temp_dirs(&std::env::temp_dir()));
        let template =
            std::env::temp_dir().join(format!("plugin-worker-{}-XXXXXX", std::process::id()));
        let path = nix::unistd::mkdtemp(&template).map_err(io::Error::from)?;
        let dir = TempDir { path };
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let id = identity::UNPRIVILEGED_ID;
            std::os::unix::fs::chown(&dir.path, Some(id), Some(id))?;
        }
        Ok(dir)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the empty worker directories in `dir` left by hosts that were killed before they
/// could remove them (`plugin-worker-<pid>-*` of a pid that no longer runs, or of our own pid,
/// which can only be an earlier host's since we have made none yet). Only empty directories
/// owned by us or by the workers' uid go: a worker with a private tmpfs leaves its directory
/// empty on this side; anything else is left alone (never followed, never emptied).
fn remove_stale_temp_dirs(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let owners = [unsafe { libc::geteuid() }, identity::UNPRIVILEGED_ID];
    for entry in crate::sandbox::process::left_by_gone_hosts(dir, "plugin-worker-") {
        let ours = std::fs::symlink_metadata(entry.path())
            .is_ok_and(|meta| meta.is_dir() && owners.contains(&meta.uid()));
        if ours {
            // Fails harmlessly if it is not empty.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_temp_dir_is_new_private_and_removed_when_dropped() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let first = TempDir::create().unwrap();
        let second = TempDir::create().unwrap();
        assert_ne!(first.path(), second.path());
        let meta = std::fs::symlink_metadata(first.path()).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(meta.uid(), identity::UNPRIVILEGED_ID);
        }
        std::fs::write(first.path().join("left-by-the-plugin"), b"x").unwrap();
        let path = first.path().to_path_buf();
        drop(first);
        assert!(!path.exists(), "{} was not removed", path.display());
    }

    #[test]
    fn empty_worker_directories_of_hosts_that_are_gone_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22: this pid cannot run.
        let gone = dir.path().join("plugin-worker-4194305-abcdef");
        let gone_full = dir.path().join("plugin-worker-4194305-ghijkl");
        let alive = dir.path().join(format!(
            "plugin-worker-{}-mnopqr",
            std::os::unix::process::parent_id()
        ));
        let other = dir.path().join("plugin-workers-of-someone-else");
        for d in [&gone, &gone_full, &alive, &other] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(gone_full.join("kept"), b"x").unwrap();
        remove_stale_temp_dirs(dir.path());
        assert!(!gone.exists());
        assert!(
            gone_full.join("kept").exists(),
            "a non-empty one is left alone"
        );
        assert!(
            alive.exists(),
            "the directory of a running host is left alone"
        );
        assert!(other.exists());
    }

    #[test]
    fn refusal_names_each_missing_layer() {
        let layers: Vec<String> = ["rlimits", "watchdog", "landlock"]
            .map(String::from)
            .to_vec();
        let missing = vec![("seccomp".to_string(), "left out".to_string())];
        let why = refusal(SecurityLevel::Standard, &layers, &missing).unwrap();
        assert!(why.contains("`seccomp` (left out)"), "{why}");
        assert!(!why.contains("`landlock`"), "{why}");
        assert_eq!(refusal(SecurityLevel::Minimal, &layers, &missing), None);
    }
}

//! A plugin file, read once, inspected, and sealed for loading.
//!
//! [`Plugin::open`] reads the file into memory, inspects those bytes, and copies them into a
//! sealed memfd (no more writes, no resizing). Workers load the plugin from that memfd, so the
//! code that runs is byte for byte the code that was hashed and inspected, whatever happens to
//! the file on disk afterwards.

use crate::error::Error;
use crate::inspect::{self, Report};
use plugin_manifest::{Limits, Manifest, SecurityLevel};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Largest plugin file accepted.
pub const MAX_PLUGIN_SIZE: u64 = 256 * 1024 * 1024;

/// An inspected plugin, ready to be loaded into workers.
#[derive(Debug)]
pub struct Plugin {
    path: PathBuf,
    report: Report,
    memfd: OwnedFd,
    /// The shared libraries the loader will open for it (its closure), for the worker's
    /// Landlock rules.
    libraries: Vec<PathBuf>,
}

impl Plugin {
    /// Reads, inspects and seals the plugin at `path`. Fails if the file is unreadable, too
    /// large, not a plugin, or its manifest is invalid; findings that only affect some entry
    /// points are in [`Plugin::report`].
    pub fn open(path: impl AsRef<Path>) -> Result<Plugin, Error> {
        let path = path.as_ref();
        let io_error = |error| Error::Io {
            path: path.to_path_buf(),
            error,
        };
        let bytes = read_bounded(path).map_err(io_error)?;
        let mut report = inspect::inspect_bytes(path, &bytes).map_err(|error| Error::Inspect {
            path: path.to_path_buf(),
            error,
        })?;
        let memfd = seal(&report.manifest.info.name, &bytes).map_err(io_error)?;
        let libraries =
            crate::sandbox::landlock::library_closure(&crate::elf::needed_libraries(&bytes));
        inspect::check_unresolved(&mut report, &bytes, &libraries);
        Ok(Plugin {
            path: path.to_path_buf(),
            report,
            memfd,
            libraries,
        })
    }

    /// The files of the plugin's shared-library closure (what loading it opens).
    pub fn libraries(&self) -> &[PathBuf] {
        &self.libraries
    }

    /// The file this plugin was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The inspection report.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.report.manifest
    }

    /// The sealed bytes workers load.
    pub(crate) fn memfd(&self) -> &OwnedFd {
        &self.memfd
    }

    /// Hooks whose entry point inspection found callable.
    pub fn callable_hooks(&self) -> Vec<String> {
        self.report
            .entry_points
            .iter()
            .filter(|e| e.callable)
            .map(|e| e.hook.clone())
            .collect()
    }

    /// The level the plugin runs at: `level` if given, else the one it asks for.
    pub fn level(&self, level: Option<SecurityLevel>) -> SecurityLevel {
        level.unwrap_or(self.manifest().info.security_level)
    }

    /// The effective limits at `level`: the level's maxima, tightened by the plugin's own
    /// request.
    pub fn limits(&self, level: Option<SecurityLevel>) -> Limits {
        self.level(level)
            .max_limits()
            .tighten(&self.manifest().info.limits)
    }
}

/// Reads a file, refusing more than [`MAX_PLUGIN_SIZE`] bytes whatever its metadata says.
pub fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    crate::bounded::read_file(path, MAX_PLUGIN_SIZE, "plugin size")
}

fn seal(name: &str, bytes: &[u8]) -> std::io::Result<OwnedFd> {
    crate::ipc::shared::seal(&format!("plugin:{name}"), bytes)
}

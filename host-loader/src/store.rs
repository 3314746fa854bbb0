//! The managed plugin store: installed plugin files on disk, named by their SHA-256.
//!
//! Layout under the host's data dir:
//!
//! ```text
//! <data-dir>/plugins/<sha256>/plugin.so   the installed bytes, read-only (0444)
//! <data-dir>/plugins/<sha256>/data/       the plugin's own data dir (relative fs.* scopes)
//! ```
//!
//! A file is written to a temporary name in the same directory, synced and renamed into place,
//! so a crash never leaves a half-written `plugin.so`. Ids are checked to be SHA-256 hex before
//! any path is built from them: an id comes from the audit store, and a tampered row must not
//! point a removal outside the store. Directories are 0700: only the host reads plugin files
//! and serves the data dirs (through the broker); workers never open them. This module moves bytes only: whether a
//! plugin may be installed, and the record of it, are [`crate::service`]'s and
//! [`crate::audit`]'s.
#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The plugin files under a data dir.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store under `data_dir` (`<data_dir>/plugins`), created if missing.
    pub fn open(data_dir: &Path) -> io::Result<Store> {
        let root = data_dir.join("plugins");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&root)?;
        Ok(Store { root })
    }

    /// The directory of the plugin with id `sha256`; an error if `sha256` is not 64 lowercase
    /// hex digits.
    pub fn dir(&self, sha256: &str) -> io::Result<PathBuf> {
        if sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(self.root.join(sha256))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "plugin id {sha256:?} is not a SHA-256 (64 lowercase hex digits): the audit \
                     store's row was tampered with"
                ),
            ))
        }
    }

    /// The installed file of the plugin with id `sha256`.
    pub fn plugin_path(&self, sha256: &str) -> io::Result<PathBuf> {
        Ok(self.dir(sha256)?.join("plugin.so"))
    }

    /// The plugin's own data directory.
    pub fn data_dir(&self, sha256: &str) -> io::Result<PathBuf> {
        Ok(self.dir(sha256)?.join("data"))
    }

    /// Takes the store's install lock (an exclusive `flock` on `plugins/.install.lock`) until
    /// the returned guard is dropped: installs from several threads or processes (the CLI and
    /// `serve`) are serialised from the already-installed check to the record.
    pub fn install_lock(&self) -> io::Result<nix::fcntl::Flock<fs::File>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.root.join(".install.lock"))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| io::Error::from(errno))
    }

    /// Writes `bytes` as the plugin with id `sha256` (atomically: temp file, fsync, rename)
    /// and creates its data dir. Returns the installed file's path.
    pub fn put(&self, sha256: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let dir = self.dir(sha256)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        // The data dir is where the plugin's relative fs.* scopes point; only the host's
        // broker opens it.
        let data = self.data_dir(sha256)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        // A temporary name of this process: a leftover from a crashed install of another
        // process is never touched (installs are serialised by `install_lock`).
        let temp = dir.join(format!(".plugin.so.partial.{}", std::process::id()));
        let _ = fs::remove_file(&temp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        let path = self.plugin_path(sha256)?;
        fs::rename(&temp, &path)?;
        fs::File::open(&dir)?.sync_all()?;
        Ok(path)
    }

    /// Removes the plugin's directory (file and data). Missing is fine.
    pub fn remove(&self, sha256: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.dir(sha256)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

//! The crate's top-level error: each module's error wrapped with the context (usually the
//! file) it happened in.

use std::path::PathBuf;
use thiserror::Error;

/// Anything that can go wrong before a call gets an [`crate::Outcome`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not a loadable plugin for this host.
    #[error("{}: {error}", path.display())]
    Inspect {
        /// The file.
        path: PathBuf,
        /// Why.
        error: crate::elf::ElfError,
    },
    /// A worker could not be started or configured.
    #[error("worker: {0}")]
    Worker(#[from] crate::worker::SpawnError),
}

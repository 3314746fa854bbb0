//! # host-loader: run untrusted native plugins, confined
//!
//! The data flow, from a file to a result:
//!
//! 1. [`plugin::Plugin::open`] reads the `.so` once into memory, hashes it (SHA-256) and
//!    [`inspect`]s it: the ELF header, the manifest records in the `.plugin_manifest` section,
//!    the exported entry point symbols and their signature hashes. No plugin code runs; the
//!    file is never `dlopen`ed in this process.
//! 2. The inspected bytes are sealed in a memfd. A worker ([`worker::Worker`]) is a separate
//!    executable (`plugin-worker`) started from a dedicated spawner thread; before it loads the
//!    plugin it confines itself ([`sandbox`]) and then `dlopen`s exactly the sealed bytes that
//!    were hashed and inspected, so there is no check-then-use gap.
//! 3. Each call is a request frame over a socketpair ([`ipc`]); the parent-side watchdog
//!    enforces the wall-clock and CPU deadlines, measures usage, and classifies the call into
//!    exactly one [`outcome::Outcome`].
//!
//! Everything that comes from the file or from the worker is treated as hostile: bounded
//! parsing, no panics, clear errors.
#![deny(missing_docs)]

pub mod elf;
pub mod error;
pub mod hooks;
pub mod inspect;
pub mod ipc;
pub mod outcome;
pub mod plugin;
pub mod sandbox;
pub mod worker;

pub use error::Error;
pub use inspect::Report;
pub use outcome::{CallResult, Outcome, Usage};
pub use plugin::Plugin;
pub use worker::{LaunchMode, Worker, WorkerOptions};

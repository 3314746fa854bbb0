//! # host-loader: run untrusted native plugins, confined
//!
//! The data flow, from a file to a result:
//!
//! 1. [`plugin::Plugin::open`] reads the `.so` once into memory, hashes it (SHA-256) and
//!    [`inspect`]s it: the ELF header, the manifest records in the `.plugin_manifest` section,
//!    the exported entry point symbols and their signature hashes. No plugin code runs; the
//!    file is never `dlopen`ed in this process.
//! 2. The inspected bytes are sealed in a memfd. A worker ([`worker::Worker`]) is forked from
//!    the launcher, a small single-threaded fork server started once per host
//!    ([`worker::launcher`]), so launching does not depend on the host's size or threads.
//!    Before the worker loads the plugin it confines itself ([`sandbox`]); then it `dlopen`s
//!    exactly the sealed bytes that were hashed and inspected, so there is no check-then-use
//!    gap, and runs the plugin's `init`.
//! 3. Each call is a request frame over a socketpair ([`ipc`]); streams keep several requests
//!    in flight. The parent-side watchdog enforces the wall-clock and CPU deadlines, measures
//!    usage, and classifies each call into exactly one [`outcome::Outcome`].
//! 4. A [`pool::Pool`] keeps warm workers per plugin, retires any worker after a call that did
//!    not end `ok`, and evicts idle ones.
//! 5. The [`service::Host`] manages installed plugins (a [`store::Store`] named by SHA-256),
//!    dispatches hooks across them with failures isolated, restarts and quarantines, and
//!    records everything in the [`audit`] store; [`report`] shapes the security reports and
//!    [`api`] serves them over HTTP.
//!
//! Everything that comes from the file or from the worker is treated as hostile: bounded
//! parsing, no panics, clear errors.
#![deny(missing_docs)]

pub mod api;
pub mod audit;
pub mod bounded;
pub mod broker;
pub mod elf;
pub mod error;
pub mod hooks;
pub mod inspect;
pub mod ipc;
pub mod outcome;
pub mod plugin;
pub mod policy;
pub mod pool;
pub mod report;
pub mod sandbox;
pub mod service;
pub mod store;
pub mod worker;

pub use error::Error;
pub use inspect::Report;
pub use outcome::{CallResult, Outcome, Usage};
pub use plugin::Plugin;
pub use pool::{Pool, PoolConfig};
pub use worker::{LaunchMode, Worker, WorkerOptions};

//! # plugin-sdk: write a plugin in five minutes
//!
//! A plugin is a `cdylib` crate. Declare it once with [`plugin!`], then mark each entry point
//! with [`#[hook]`](macro@hook):
//!
//! ```ignore
//! use plugin_sdk::{Story, hook, plugin};
//! use serde::Serialize;
//!
//! plugin! {
//!     name: "title-length",
//!     description: "Counts the characters of a story's title",
//!     level: strict,
//!     limits: { wall_ms: 1000 },
//! }
//!
//! #[derive(Serialize)]
//! struct TitleLength { title: String, chars: usize }
//!
//! #[hook]
//! fn analyze(story: Story) -> TitleLength {
//!     TitleLength { chars: story.title.chars().count(), title: story.title }
//! }
//! ```
//!
//! with `crate-type = ["cdylib"]` in `Cargo.toml`. The macros embed a manifest (identity,
//! level, permissions, limits, entry points with signature hashes) in the library's
//! `.plugin_manifest` section, where `plugin-host inspect` reads it without running your code,
//! and export one `extern "C"` function per hook that the sandboxed worker calls.
//!
//! `plugin!` and `#[hook]` may also live in a plain library crate that the `cdylib` depends
//! on; the `cdylib` must then name it (`extern crate my_hooks;`), or the linker leaves the
//! unreferenced library, and its manifest, out.
//!
//! During a call, [`host::host()`] reaches the host's services (files, HTTP, a private SQLite
//! store, key-value, environment, notifications, logs), each checked against the plugin's
//! permissions and counted against its limits.
//!
//! What crosses the boundary is described in [`abi`]. Panics are caught at the boundary and
//! reported with their message; returning `Err(e)` reports `plugin_error` with `e.to_string()`.
#![deny(missing_docs)]

pub mod abi;
pub mod host;
mod story;

#[doc(hidden)]
pub mod __private;

pub use host::{Host, HostError, host};
pub use plugin_macros::{hook, init, plugin, shutdown};
pub use plugin_manifest as manifest;
pub use story::Story;

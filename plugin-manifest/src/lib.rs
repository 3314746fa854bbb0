//! The plugin manifest, as data.
//!
//! A plugin's manifest says who it is (name, version, author), what it asks for (security
//! level, permissions, resource limits), how it was built (ABI facts) and which entry points it
//! exports, each with a signature hash. The `plugin-macros` crate writes it at compile time into
//! the `.plugin_manifest` ELF section as a sequence of [`record`]s; `host-loader` reads the same
//! records back from the file without running any plugin code.
//!
//! This crate is pure data: no I/O, no `unsafe`, no knowledge of ELF. Everything that decodes
//! bytes here treats them as hostile (bounded, never panics).
//!
//! - [`model`]: the manifest types and their validation (raw records -> [`Manifest`]).
//! - [`record`]: the framed record format of the manifest section.
//! - [`signature`]: wire kinds of entry point inputs/outputs and the signature hash.
//! - [`level`]: security levels and the limits each allows.
//! - [`permission`]: the permission catalog and scoped grants.
//! - [`broker`]: the requests a plugin makes to its host during a call, and the answers.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod broker;
pub mod level;
pub mod model;
pub mod permission;
pub mod record;
pub mod signature;

pub use level::{Limits, SecurityLevel};
pub use model::{AbiFacts, EntryPoint, Manifest, ManifestError, PluginInfo};
pub use permission::{Grant, PermissionKind, Risk};
pub use record::{Record, RecordError, RecordKind};
pub use signature::{Signature, WireKind};

/// The SDK ABI version this crate describes: the shape of the exported entry points and of the
/// data that crosses the FFI boundary. Bumped on any incompatible change.
pub const SDK_ABI_VERSION: u32 = 1;

/// The ELF section every plugin's manifest records live in.
pub const MANIFEST_SECTION: &str = ".plugin_manifest";

/// Exported symbol of the manifest record (identity, permissions, limits).
pub const MANIFEST_SYMBOL: &str = "PLUGIN_MANIFEST";

/// Exported symbol of the ABI facts record (rustc, target, panic strategy, SDK ABI version).
pub const ABI_SYMBOL: &str = "PLUGIN_ABI";

/// Prefix of the exported function symbol of each entry point: `__plugin_hook_<hook>`.
pub const HOOK_SYMBOL_PREFIX: &str = "__plugin_hook_";

/// Prefix of the exported record symbol describing each entry point: `__plugin_hookinfo_<hook>`.
pub const HOOK_INFO_SYMBOL_PREFIX: &str = "__plugin_hookinfo_";

/// The lifecycle entry point run once when a worker starts, with the plugin's configuration.
pub const INIT_HOOK: &str = "init";

/// The lifecycle entry point run when a healthy worker is retired, under a short deadline.
pub const SHUTDOWN_HOOK: &str = "shutdown";

/// Whether `hook` is a lifecycle entry point (called by the host, never by name).
pub fn is_lifecycle_hook(hook: &str) -> bool {
    hook == INIT_HOOK || hook == SHUTDOWN_HOOK
}

/// The exported function symbol for `hook`.
pub fn hook_symbol(hook: &str) -> String {
    format!("{HOOK_SYMBOL_PREFIX}{hook}")
}

/// The exported record symbol for `hook`.
pub fn hook_info_symbol(hook: &str) -> String {
    format!("{HOOK_INFO_SYMBOL_PREFIX}{hook}")
}

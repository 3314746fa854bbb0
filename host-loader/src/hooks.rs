//! The hooks this host knows, and the signature it expects for each.
//!
//! A plugin may export hooks the host does not know (they can be run by name, with the
//! plugin's own declared signature); for a known hook, the plugin's signature hash must equal
//! the host's expectation or the entry point is refused.

use plugin_manifest::signature::{Signature, WireKind, WireType};

/// A hook the host calls, with what it sends and what it accepts back.
#[derive(Debug, Clone, Copy)]
pub struct HookSpec {
    /// Hook name.
    pub name: &'static str,
    /// What the host sends: a wire kind and, for JSON, the type name.
    pub input: (WireKind, &'static str),
    /// What the host accepts back (any type name for JSON: it is self-describing).
    pub output: WireKind,
    /// What the hook is for.
    pub description: &'static str,
}

/// Every hook the host knows.
pub const KNOWN_HOOKS: &[HookSpec] = &[HookSpec {
    name: "analyze",
    input: (WireKind::Json, "Story"),
    output: WireKind::Json,
    description: "analyse one story (`plugin_sdk::Story` as JSON) and return a JSON result",
}];

impl HookSpec {
    /// The signature the host expects.
    pub fn signature(&self) -> Signature {
        let input = match self.input {
            (WireKind::Json, name) => WireType::json(name),
            (kind, _) => WireType::plain(kind),
        };
        let output = match self.output {
            WireKind::Json => WireType::json("any"),
            kind => WireType::plain(kind),
        };
        Signature { input, output }
    }
}

/// The host's spec for `hook`, if it knows it.
pub fn known(hook: &str) -> Option<&'static HookSpec> {
    KNOWN_HOOKS.iter().find(|spec| spec.name == hook)
}

/// Checks a lifecycle entry point's signature: `init` takes nothing or its configuration as
/// JSON (of any type: the configuration is the plugin's own), `shutdown` takes nothing, and
/// neither returns a value (a `Result<(), E>` is fine: the error is reported). On mismatch,
/// returns what the host expects.
pub fn check_lifecycle(hook: &str, signature: &Signature) -> Result<(), &'static str> {
    let input_ok = match hook {
        plugin_manifest::INIT_HOOK => {
            matches!(signature.input.kind, WireKind::None | WireKind::Json)
        }
        _ => signature.input.kind == WireKind::None,
    };
    if input_ok && signature.output.kind == WireKind::None {
        return Ok(());
    }
    Err(match hook {
        plugin_manifest::INIT_HOOK => {
            "`init()` or `init(config: T)` with `T: Deserialize`, returning `()` or `Result<(), E>`"
        }
        _ => "`shutdown()` returning `()` or `Result<(), E>`",
    })
}

//! Hostile (or just wrong): exports the `analyze` hook taking plain text, while the host sends
//! `analyze` a JSON `Story`. The declared signature hash differs from the host's for that hook,
//! so static inspection must report `SIGNATURE_MISMATCH` ("host expects (json Story) ->
//! json any, plugin has (text) -> text"), mark the entry point not callable, and `validate`
//! must deny the plugin.
use plugin_sdk::{hook, plugin};

plugin! {
    name: "hostile-bad-signature",
    description: "Exports analyze with a signature the host does not expect",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
}

/// Takes the raw text instead of a `Story`.
#[hook]
pub fn analyze(text: String) -> String {
    text.to_uppercase()
}

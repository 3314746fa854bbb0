//! Items the macro-generated code calls. Not a public API: it changes with any release.
#![allow(missing_docs)]

pub use crate::abi::CallOutcome;
use plugin_manifest::record::{HEADER_LEN, RecordKind, encode_array};
use std::any::Any;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use abi_stable::std_types::RSlice;
pub use serde_json;

macro_rules! abi_json {
    ($panic:literal) => {
        concat!(
            "{\"sdk_abi_version\":1,\"sdk_version\":\"",
            env!("CARGO_PKG_VERSION"),
            "\",\"rustc\":\"",
            env!("PLUGIN_SDK_RUSTC"),
            "\",\"target\":\"",
            env!("PLUGIN_SDK_TARGET"),
            "\",\"panic\":\"",
            $panic,
            "\"}"
        )
    };
}

/// The ABI facts of this SDK build as JSON. The panic strategy is the one this crate is
/// compiled with, which cargo keeps the same for every crate of the plugin.
#[cfg(panic = "unwind")]
pub const ABI_JSON: &str = abi_json!("unwind");
#[cfg(not(panic = "unwind"))]
pub const ABI_JSON: &str = abi_json!("abort");

pub const ABI_RECORD_LEN: usize = HEADER_LEN + ABI_JSON.len();
pub const ABI_RECORD: [u8; ABI_RECORD_LEN] = encode_array(RecordKind::Abi, ABI_JSON.as_bytes());

/// Body of the exported `PLUGIN_HOST_INIT` that `plugin!` emits: keeps the worker's broker
/// entry point for [`crate::host`].
pub fn install_host(vtable: &'static crate::abi::HostVtable) {
    crate::host::install(vtable);
}

/// Runs an entry point body, turning its result or panic into a [`CallOutcome`].
pub fn call_entry(
    input: RSlice<'_, u8>,
    body: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
) -> CallOutcome {
    match catch_unwind(AssertUnwindSafe(|| body(input.as_slice()))) {
        Ok(Ok(output)) => CallOutcome::ok(output),
        Ok(Err(message)) => CallOutcome::plugin_error(message),
        Err(payload) => CallOutcome::panic(panic_message(payload.as_ref())),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

pub fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8], hook: &str) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "input of `{hook}` is not a valid JSON {}: {e}",
            short_type_name::<T>()
        )
    })
}

pub fn encode_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("output could not be encoded as JSON: {e}"))
}

pub fn decode_text<'a>(bytes: &'a [u8], hook: &str) -> Result<&'a str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("input of `{hook}` is not UTF-8 text: {e}"))
}

pub fn error_message<E: Display + ?Sized>(error: &E) -> String {
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{STATUS_OK, STATUS_PANIC, STATUS_PLUGIN_ERROR};
    use plugin_manifest::AbiFacts;

    #[test]
    fn abi_record_describes_this_build() {
        let record = plugin_manifest::record::parse_one(&ABI_RECORD, 0).unwrap();
        let facts: AbiFacts = serde_json::from_slice(record.payload).unwrap();
        assert_eq!(facts.sdk_abi_version, plugin_manifest::SDK_ABI_VERSION);
        assert_eq!(facts.sdk_version, env!("CARGO_PKG_VERSION"));
        assert!(facts.rustc.starts_with("rustc "), "{}", facts.rustc);
        assert_eq!(facts.panic, "unwind");
    }

    #[test]
    fn call_entry_maps_results_and_panics() {
        let input = [1u8, 2];
        let ok = call_entry(RSlice::from_slice(&input), |bytes| Ok(bytes.to_vec()));
        assert_eq!(
            (ok.status, ok.payload.as_slice()),
            (STATUS_OK, &[1u8, 2][..])
        );
        let err = call_entry(RSlice::from_slice(&input), |_| Err("bad".into()));
        assert_eq!(
            (err.status, err.payload.as_slice()),
            (STATUS_PLUGIN_ERROR, &b"bad"[..])
        );
        let panicked = call_entry(RSlice::from_slice(&input), |_| panic!("boom {}", 7));
        assert_eq!(
            (panicked.status, panicked.payload.as_slice()),
            (STATUS_PANIC, &b"boom 7"[..])
        );
    }
}

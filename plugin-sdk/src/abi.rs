//! The C ABI between a worker and a plugin's entry points.
//!
//! Every entry point has the same shape, [`EntryFn`]: it takes the input bytes and returns a
//! [`CallOutcome`], a status byte plus an owned byte vector. `abi_stable`'s `RSlice`/`RVec`
//! carry the bytes, so the vector is freed by the allocator that made it (the plugin's), and
//! their layout is checked at load time through [`AbiRoot`].
//!
//! The status is a plain `u8`, not a Rust enum: a hostile plugin can return any byte, and an
//! out-of-range enum discriminant would be undefined behaviour in the worker.

use abi_stable::StableAbi;
use abi_stable::std_types::{RSlice, RVec};
use abi_stable::type_layout::TypeLayout;

pub use plugin_manifest::SDK_ABI_VERSION;

/// The oldest SDK ABI version a host built with this SDK still loads. A host accepts every
/// version in `MIN_SUPPORTED_ABI_VERSION..=SDK_ABI_VERSION`.
pub const MIN_SUPPORTED_ABI_VERSION: u32 = 1;

/// [`CallOutcome::status`]: the entry point returned a value.
pub const STATUS_OK: u8 = 0;
/// [`CallOutcome::status`]: the entry point returned an error; the payload is its message.
pub const STATUS_PLUGIN_ERROR: u8 = 1;
/// [`CallOutcome::status`]: the entry point panicked; the payload is the panic message.
pub const STATUS_PANIC: u8 = 2;

/// What an entry point returns.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct CallOutcome {
    /// One of the `STATUS_*` constants.
    pub status: u8,
    /// The encoded output, or a UTF-8 message for errors and panics.
    pub payload: RVec<u8>,
}

impl CallOutcome {
    /// A successful call with its encoded output.
    pub fn ok(payload: Vec<u8>) -> CallOutcome {
        CallOutcome {
            status: STATUS_OK,
            payload: payload.into(),
        }
    }

    /// A call that failed with a message.
    pub fn plugin_error(message: String) -> CallOutcome {
        CallOutcome {
            status: STATUS_PLUGIN_ERROR,
            payload: message.into_bytes().into(),
        }
    }

    /// A call that panicked, with the panic message.
    pub fn panic(message: String) -> CallOutcome {
        CallOutcome {
            status: STATUS_PANIC,
            payload: message.into_bytes().into(),
        }
    }
}

/// The type of every exported entry point, `__plugin_hook_<hook>`.
pub type EntryFn = extern "C" fn(input: RSlice<'_, u8>) -> CallOutcome;

/// Exported by every plugin as `PLUGIN_ABI_ROOT`: lets the worker check, after loading, that
/// the plugin's idea of the ABI matches its own before calling anything.
#[repr(C)]
#[derive(Debug)]
pub struct AbiRoot {
    /// Always [`ABI_ROOT_MAGIC`].
    pub magic: [u8; 8],
    /// The plugin's SDK ABI version.
    pub abi_version: u32,
    /// `abi_stable`'s layout of [`CallOutcome`] as the plugin sees it.
    pub call_outcome_layout: &'static TypeLayout,
}

/// Magic bytes of [`AbiRoot`].
pub const ABI_ROOT_MAGIC: [u8; 8] = *b"PLGABI\0\x01";

/// Name of the exported [`AbiRoot`] static.
pub const ABI_ROOT_SYMBOL: &str = "PLUGIN_ABI_ROOT";

/// The [`AbiRoot`] of this SDK build.
pub const ABI_ROOT: AbiRoot = AbiRoot {
    magic: ABI_ROOT_MAGIC,
    abi_version: SDK_ABI_VERSION,
    call_outcome_layout: <CallOutcome as StableAbi>::LAYOUT,
};

/// The host's broker entry point, handed to the plugin once after loading through its exported
/// `PLUGIN_HOST_INIT` (see [`HostInitFn`]). `call` takes a postcard-encoded
/// `plugin_manifest::broker::Envelope` and returns a postcard-encoded
/// `plugin_manifest::broker::Response`; the vector is allocated by the worker and freed through
/// its own vtable (`RVec`), so the plugin's allocator never frees the worker's memory.
#[repr(C)]
#[derive(Debug)]
pub struct HostVtable {
    /// Always [`HOST_VTABLE_MAGIC`].
    pub magic: [u8; 8],
    /// `plugin_manifest::broker::BROKER_PROTOCOL_VERSION` of the worker.
    pub protocol_version: u16,
    /// Sends one request and waits for its answer.
    pub call: extern "C" fn(request: RSlice<'_, u8>) -> RVec<u8>,
}

/// Magic bytes of [`HostVtable`].
pub const HOST_VTABLE_MAGIC: [u8; 8] = *b"PLGHOST\x01";

/// The type of the exported `PLUGIN_HOST_INIT`.
pub type HostInitFn = extern "C" fn(host: &'static HostVtable);

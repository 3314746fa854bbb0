//! The messages exchanged over frames, encoded with postcard.
//!
//! Order on a fresh worker: host sends the plugin's descriptor ([`super::fd`]), then
//! [`ToWorker::Load`]; the worker answers [`FromWorker::Confined`] (sent before any plugin
//! code runs, so it is trustworthy) and then [`FromWorker::Ready`] or
//! [`FromWorker::LoadFailed`]. Then any number of [`ToWorker::Call`]s, answered by
//! [`FromWorker::Result`]s in the same order (several calls may be in flight), and finally
//! [`ToWorker::Shutdown`]. While a call runs, the plugin may make broker requests
//! ([`FromWorker::Broker`]), each answered by a [`ToWorker::BrokerReply`] before the call goes
//! on.

use crate::sandbox::Confinement;
use plugin_manifest::Limits;
use serde::{Deserialize, Serialize};

/// Host to worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Confine yourself, report [`FromWorker::Confined`], then wait for [`ToWorker::Proceed`].
    Load(LoadRequest),
    /// The reported layers are enough for the plugin's level: load the plugin from the
    /// descriptor passed before `Load`.
    Proceed,
    /// Call one entry point.
    Call {
        /// Matches the answer to the request.
        id: u64,
        /// The hook to call.
        hook: String,
        /// The encoded input.
        input: Payload,
    },
    /// The answer to a [`FromWorker::Broker`] request: a postcard-encoded
    /// `plugin_manifest::broker::Response`, passed to the plugin unchanged.
    BrokerReply {
        /// The call the request was made in.
        id: u64,
        /// The encoded response.
        reply: Vec<u8>,
    },
    /// Exit cleanly.
    Shutdown,
}

/// What the worker needs to confine itself and load the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadRequest {
    /// The effective limits.
    pub limits: Limits,
    /// `RLIMIT_AS` to set. Equal to the memory limit unless a cgroup enforces memory, in which
    /// case it is a looser backstop against address-space blowup.
    pub address_space_bytes: u64,
    /// The entry points to resolve before answering `Ready`.
    pub hooks: Vec<String>,
    /// SDK ABI versions the host accepts, inclusive.
    pub abi_versions: (u32, u32),
    /// The confinement to apply before loading.
    pub confinement: Confinement,
}

/// Worker to host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromWorker {
    /// Confinement is in place; sent before the plugin is loaded. When seccomp is active, the
    /// filter's user-notification listener travels with this frame.
    Confined {
        /// The layers applied.
        layers: Vec<String>,
        /// The kernel's Landlock ABI, when Landlock is applied.
        landlock_abi: Option<u32>,
        /// Layers asked for that could not be applied: (layer, why).
        missing: Vec<(String, String)>,
    },
    /// The plugin is loaded and its entry points resolved.
    Ready,
    /// Loading failed; the worker exits after sending this.
    LoadFailed {
        /// Which step failed.
        stage: String,
        /// Why.
        message: String,
    },
    /// A request from the plugin to the host's broker, made during call `id`: a
    /// postcard-encoded `plugin_manifest::broker::Envelope` written by the plugin (hostile).
    /// The worker waits for the [`ToWorker::BrokerReply`].
    Broker {
        /// The call in progress.
        id: u64,
        /// The encoded request.
        request: Vec<u8>,
    },
    /// The answer to a call.
    Result {
        /// The request's id.
        id: u64,
        /// One of `plugin_sdk::abi::STATUS_*`.
        status: u8,
        /// Output bytes or a UTF-8 message.
        payload: Payload,
    },
}

/// The bytes of a call's input or result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// In the frame itself.
    Inline(Vec<u8>),
    /// In a sealed memfd passed with this frame (`super::shared`): the next descriptor the
    /// receiver has not yet taken, holding exactly `len` bytes.
    Shared {
        /// Its size.
        len: u64,
    },
}

/// Encodes a message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_allocvec(message).unwrap_or_default()
}

/// Decodes a message; any error means the peer sent garbage.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let message = FromWorker::Result {
            id: 7,
            status: 0,
            payload: Payload::Inline(b"{}".to_vec()),
        };
        assert_eq!(decode::<FromWorker>(&encode(&message)).unwrap(), message);
        assert!(decode::<FromWorker>(&[0xff, 0xff, 0xff]).is_err());
        // A length claiming 4 GiB of payload in a 10-byte frame is an error, not an allocation.
        let mut lying = encode(&FromWorker::Result {
            id: 1,
            status: 0,
            payload: Payload::Inline(Vec::new()),
        });
        lying.pop();
        lying.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode::<FromWorker>(&lying).is_err());
    }
}

//! The channel between host and worker: length-prefixed frames ([`frame`]) carrying postcard
//! messages ([`message`]), passing file descriptors ([`fd`]), and large payloads through sealed
//! memfds ([`shared`]).
//!
//! Invariant: the host never trusts a byte from the worker. A frame longer than the maximum,
//! a truncated frame or an undecodable message is a protocol error that ends that worker.
//! Memory use is bounded by the maximum frame size, never by a length the worker claims.

pub mod fd;
pub mod frame;
pub mod message;
pub mod shared;

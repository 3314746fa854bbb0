//! Length-prefixed frames: a 4-byte little-endian length, then that many bytes.
//!
//! - Both sides refuse a length above the configured maximum before reading the body.
//! - The body buffer grows with the bytes that actually arrive; a claimed length never sizes
//!   an allocation by itself.
//! - `EINTR` and partial reads and writes are retried.
//! - The host side ([`FrameReader`], [`write_frame_before`]) never blocks past a deadline: a
//!   worker that stops reading or sends half a frame cannot hang the host.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::time::Instant;
use thiserror::Error;

/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;
/// Default largest frame: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;
/// How much to read per `read` call at most.
const CHUNK: usize = 64 * 1024;

/// What can go wrong with a frame.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix exceeds the maximum.
    #[error("frame of {len} bytes exceeds the {max}-byte maximum")]
    TooLarge {
        /// The claimed length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The peer closed the channel (mid-frame when `partial` is set).
    #[error("channel closed{}", if *partial { " in the middle of a frame" } else { "" })]
    Closed {
        /// Whether part of a frame had arrived.
        partial: bool,
    },
    /// The deadline passed first.
    #[error("timed out")]
    TimedOut,
    /// Any other I/O error.
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn check_len(len: usize, max: usize) -> Result<(), FrameError> {
    if len > max {
        Err(FrameError::TooLarge { len, max })
    } else {
        Ok(())
    }
}

/// Encodes a frame into one buffer (header + payload), so it goes out in one write.
pub fn encode(payload: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    check_len(payload.len(), max)?;
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
        len: payload.len(),
        max,
    })?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Blocking write of one frame (worker side).
pub fn write_frame(writer: &mut impl Write, payload: &[u8], max: usize) -> Result<(), FrameError> {
    writer.write_all(&encode(payload, max)?)?;
    Ok(())
}

/// Blocking read of one frame (worker side).
pub fn read_frame(reader: &mut impl Read, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            return Err(FrameError::Closed { partial: false });
        }
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(header) as usize;
    check_len(len, max)?;
    let mut body = Vec::new();
    reader.take(len as u64).read_to_end(&mut body)?;
    if body.len() != len {
        return Err(FrameError::Closed { partial: true });
    }
    Ok(body)
}

/// Waits until `fd` is ready for `events` or the deadline passes.
fn wait_ready(
    fd: &impl AsFd,
    events: nix::poll::PollFlags,
    deadline: Instant,
) -> Result<(), FrameError> {
    use nix::poll::{PollFd, PollTimeout, poll};
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(FrameError::TimedOut);
        }
        let timeout =
            PollTimeout::try_from(remaining.as_millis().clamp(1, i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), events)];
        match poll(&mut fds, timeout) {
            Ok(0) => continue,
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e).into()),
        }
    }
}

/// Writes a whole frame on a non-blocking socket, giving up at `deadline` (host side).
pub fn write_frame_before<S: Write + AsFd>(
    socket: &mut S,
    payload: &[u8],
    max: usize,
    deadline: Instant,
) -> Result<(), FrameError> {
    let bytes = encode(payload, max)?;
    let mut written = 0;
    while written < bytes.len() {
        match socket.write(bytes.get(written..).unwrap_or_default()) {
            Ok(0) => {
                return Err(FrameError::Closed {
                    partial: written > 0,
                });
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                wait_ready(socket, nix::poll::PollFlags::POLLOUT, deadline)?
            }
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                return Err(FrameError::Closed {
                    partial: written > 0,
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Incremental reader for a non-blocking socket (host side): feed it whatever is readable,
/// take frames out when complete.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    max: usize,
}

impl FrameReader {
    /// A reader refusing frames above `max` bytes.
    pub fn new(max: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            max,
        }
    }

    /// A complete frame already buffered, if any.
    pub fn take_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        check_len(len, self.max)?;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let rest = self.buf.split_off(HEADER_LEN + len);
        let mut frame = std::mem::replace(&mut self.buf, rest);
        frame.drain(..HEADER_LEN);
        Ok(Some(frame))
    }

    /// Reads what is available without blocking. Returns `Ok(true)` if bytes arrived,
    /// `Ok(false)` if none were ready, and [`FrameError::Closed`] at end of stream.
    pub fn fill(&mut self, socket: &mut impl Read) -> Result<bool, FrameError> {
        let mut chunk = [0u8; CHUNK];
        let mut got_any = false;
        loop {
            // Never buffer more than one maximal frame plus its header.
            if self.buf.len() > self.max + HEADER_LEN {
                let len = self.buf.len();
                return Err(FrameError::TooLarge { len, max: self.max });
            }
            match socket.read(&mut chunk) {
                Ok(0) => {
                    return Err(FrameError::Closed {
                        partial: !self.buf.is_empty(),
                    });
                }
                Ok(n) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    got_any = true;
                    // Stop early once a whole frame is here, so a flood cannot keep us busy.
                    if matches!(self.take_frame_len(), Some(need) if self.buf.len() >= need) {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(got_any),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether a complete frame (or an oversize header, which `take_frame` reports) is buffered.
    pub fn has_frame(&self) -> bool {
        self.take_frame_len()
            .is_some_and(|need| self.buf.len() >= need || need > self.max + HEADER_LEN)
    }

    fn take_frame_len(&self) -> Option<usize> {
        let header = self.buf.get(..HEADER_LEN)?;
        Some(HEADER_LEN + u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    #[test]
    fn blocking_round_trip_and_limits() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        write_frame(&mut a, b"hello", 16).unwrap();
        assert_eq!(read_frame(&mut b, 16).unwrap(), b"hello");
        assert!(matches!(
            write_frame(&mut a, &[0; 17], 16),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        ));
        a.write_all(&u32::MAX.to_le_bytes()).unwrap();
        assert!(matches!(
            read_frame(&mut b, 16),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncated_frame_is_closed_partial() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(&10u32.to_le_bytes()).unwrap();
        a.write_all(b"abc").unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b, 16),
            Err(FrameError::Closed { partial: true })
        ));
    }

    #[test]
    fn nonblocking_reader_assembles_split_frames() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut reader = FrameReader::new(1024);
        let bytes = encode(b"split frame", 1024).unwrap();
        a.write_all(&bytes[..3]).unwrap();
        assert!(reader.fill(&mut b).unwrap());
        assert_eq!(reader.take_frame().unwrap(), None);
        assert!(!reader.fill(&mut b).unwrap());
        a.write_all(&bytes[3..]).unwrap();
        a.write_all(&encode(b"second", 1024).unwrap()).unwrap();
        reader.fill(&mut b).unwrap();
        assert_eq!(reader.take_frame().unwrap().unwrap(), b"split frame");
        reader.fill(&mut b).unwrap();
        assert_eq!(reader.take_frame().unwrap().unwrap(), b"second");
        drop(a);
        assert!(matches!(
            reader.fill(&mut b),
            Err(FrameError::Closed { partial: false })
        ));
    }

    #[test]
    fn nonblocking_reader_refuses_oversize_header() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        a.write_all(&(2048u32).to_le_bytes()).unwrap();
        let mut reader = FrameReader::new(1024);
        reader.fill(&mut b).unwrap();
        assert!(matches!(
            reader.take_frame(),
            Err(FrameError::TooLarge {
                len: 2048,
                max: 1024
            })
        ));
    }

    #[test]
    fn write_gives_up_when_the_peer_never_reads() {
        let (mut a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let big = vec![0u8; 8 * 1024 * 1024];
        let deadline = Instant::now() + Duration::from_millis(100);
        assert!(matches!(
            write_frame_before(&mut a, &big, big.len(), deadline),
            Err(FrameError::TimedOut)
        ));
    }
}

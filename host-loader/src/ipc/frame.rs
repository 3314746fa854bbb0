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

/// Most descriptors that may wait in a [`FrameReader`] for the frames that refer to them.
pub const MAX_PENDING_FDS: usize = 16;

/// Incremental frame reader over a Unix socket: feed it whatever is readable, take frames out
/// when complete. Descriptors that arrive with the bytes (`SCM_RIGHTS`) are queued in order for
/// the frames that refer to them ([`FrameReader::take_fd`]).
///
/// On a non-blocking socket [`FrameReader::fill`] never blocks (host side); on a blocking one
/// it waits for the first bytes (worker side). Either way one `fill` takes in as many frames as
/// the kernel has ready, up to one chunk, so a burst of requests costs one read.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Where the unconsumed bytes start in `buf`.
    start: usize,
    max: usize,
    fds: std::collections::VecDeque<std::os::fd::OwnedFd>,
    /// Receive buffer, allocated once.
    scratch: Box<[u8]>,
}

impl FrameReader {
    /// A reader refusing frames above `max` bytes.
    pub fn new(max: usize) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            max,
            fds: Default::default(),
            scratch: vec![0u8; CHUNK].into_boxed_slice(),
        }
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// A complete frame already buffered, if any.
    pub fn take_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(need) = self.next_frame_len() else {
            return Ok(None);
        };
        check_len(need - HEADER_LEN, self.max)?;
        let Some(frame) = self.pending().get(HEADER_LEN..need) else {
            return Ok(None);
        };
        let frame = frame.to_vec();
        self.start += need;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(frame))
    }

    /// The oldest received descriptor not yet taken by a frame.
    pub fn take_fd(&mut self) -> Option<std::os::fd::OwnedFd> {
        self.fds.pop_front()
    }

    /// Reads what is available. Returns `Ok(true)` if bytes arrived, `Ok(false)` if none were
    /// ready (non-blocking socket), and [`FrameError::Closed`] at end of stream.
    pub fn fill(&mut self, socket: &std::os::unix::net::UnixStream) -> Result<bool, FrameError> {
        let mut got_any = false;
        loop {
            // Never buffer more than one maximal frame plus its header.
            if self.pending().len() > self.max + HEADER_LEN {
                let len = self.pending().len();
                return Err(FrameError::TooLarge { len, max: self.max });
            }
            match crate::ipc::fd::recv_with_fds(socket, &mut self.scratch) {
                Ok((0, _)) => {
                    return Err(FrameError::Closed {
                        partial: !self.pending().is_empty(),
                    });
                }
                Ok((n, fds)) => {
                    if self.fds.len() + fds.len() > MAX_PENDING_FDS {
                        return Err(FrameError::Io(io::Error::new(
                            ErrorKind::InvalidData,
                            format!(
                                "more than {MAX_PENDING_FDS} descriptors sent ahead of their frames"
                            ),
                        )));
                    }
                    self.fds.extend(fds);
                    if self.start > 0 && self.start >= self.buf.len() / 2 {
                        self.buf.drain(..self.start);
                        self.start = 0;
                    }
                    self.buf
                        .extend_from_slice(self.scratch.get(..n).unwrap_or_default());
                    got_any = true;
                    // Stop once a whole frame is here: the caller has work, and a flood cannot
                    // keep us reading.
                    if matches!(self.next_frame_len(), Some(need) if self.pending().len() >= need) {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(got_any),
                // The peer closed with our requests still unread in its buffer: it is gone,
                // which is what the caller must classify, not a malformed message.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Err(FrameError::Closed {
                        partial: !self.pending().is_empty(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether a complete frame (or an oversize header, which `take_frame` reports) is buffered.
    pub fn has_frame(&self) -> bool {
        self.next_frame_len()
            .is_some_and(|need| self.pending().len() >= need || need > self.max + HEADER_LEN)
    }

    /// Whether part of a frame is buffered, but not a whole one.
    pub fn has_partial(&self) -> bool {
        !self.pending().is_empty() && !self.has_frame()
    }

    fn next_frame_len(&self) -> Option<usize> {
        let header = self.pending().get(..HEADER_LEN)?;
        Some(HEADER_LEN + u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize)
    }
}

/// Outgoing frames not yet written, with the descriptors to attach to some of them. Frames are
/// queued with [`Outbox::push`] and go out together: consecutive frames in one `send`, a frame
/// that carries a descriptor in a `sendmsg` that attaches it to the frame's first byte.
#[derive(Debug, Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    written: usize,
    /// Descriptors and the offset in `bytes` of the frame they belong to, in order.
    fds: std::collections::VecDeque<(usize, std::os::fd::OwnedFd)>,
}

impl Outbox {
    /// Queues a frame, with a descriptor to pass along with it.
    pub fn push(
        &mut self,
        payload: &[u8],
        max: usize,
        fd: Option<std::os::fd::OwnedFd>,
    ) -> Result<(), FrameError> {
        let frame = encode(payload, max)?;
        if let Some(fd) = fd {
            self.fds.push_back((self.bytes.len(), fd));
        }
        self.bytes.extend_from_slice(&frame);
        Ok(())
    }

    /// Whether everything queued has been written.
    pub fn is_empty(&self) -> bool {
        self.written == self.bytes.len()
    }

    /// Writes as much as the socket takes. Returns `Ok(true)` when everything is out; on a
    /// non-blocking socket `Ok(false)` means "wait for POLLOUT and call again".
    pub fn flush(&mut self, socket: &std::os::unix::net::UnixStream) -> Result<bool, FrameError> {
        use std::os::fd::AsRawFd;
        while self.written < self.bytes.len() {
            let next_fd = self.fds.front().map(|(offset, _)| *offset);
            let (end, attach) = match next_fd {
                Some(offset) if offset == self.written => {
                    let end = self.fds.get(1).map_or(self.bytes.len(), |(o, _)| *o);
                    (end, self.fds.front().map(|(_, fd)| fd.as_raw_fd()))
                }
                Some(offset) => (offset, None),
                None => (self.bytes.len(), None),
            };
            let chunk = self.bytes.get(self.written..end).unwrap_or_default();
            let attach: &[std::os::fd::RawFd] = match &attach {
                Some(fd) => std::slice::from_ref(fd),
                None => &[],
            };
            match crate::ipc::fd::send_some(socket, chunk, attach) {
                Ok(0) => return Err(FrameError::Closed { partial: true }),
                Ok(n) => {
                    if !attach.is_empty() {
                        // The descriptor went with the first byte; our copy can close.
                        self.fds.pop_front();
                    }
                    self.written += n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                    return Err(FrameError::Closed { partial: true });
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.bytes.clear();
        self.written = 0;
        Ok(true)
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
        let (mut a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut reader = FrameReader::new(1024);
        let bytes = encode(b"split frame", 1024).unwrap();
        a.write_all(&bytes[..3]).unwrap();
        assert!(reader.fill(&b).unwrap());
        assert_eq!(reader.take_frame().unwrap(), None);
        assert!(!reader.fill(&b).unwrap());
        a.write_all(&bytes[3..]).unwrap();
        a.write_all(&encode(b"second", 1024).unwrap()).unwrap();
        reader.fill(&b).unwrap();
        assert_eq!(reader.take_frame().unwrap().unwrap(), b"split frame");
        reader.fill(&b).unwrap();
        assert_eq!(reader.take_frame().unwrap().unwrap(), b"second");
        drop(a);
        assert!(matches!(
            reader.fill(&b),
            Err(FrameError::Closed { partial: false })
        ));
    }

    #[test]
    fn nonblocking_reader_refuses_oversize_header() {
        let (mut a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        a.write_all(&(2048u32).to_le_bytes()).unwrap();
        let mut reader = FrameReader::new(1024);
        reader.fill(&b).unwrap();
        assert!(matches!(
            reader.take_frame(),
            Err(FrameError::TooLarge {
                len: 2048,
                max: 1024
            })
        ));
    }

    #[test]
    fn outbox_batches_frames_and_attaches_descriptors_in_order() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut outbox = Outbox::default();
        let (marker_read, marker_write) = nix::unistd::pipe().unwrap();
        drop(marker_read);
        outbox.push(b"one", 64, None).unwrap();
        outbox.push(b"two", 64, Some(marker_write)).unwrap();
        outbox.push(b"three", 64, None).unwrap();
        assert!(outbox.flush(&a).unwrap());
        assert!(outbox.is_empty());
        let mut reader = FrameReader::new(64);
        let mut frames = Vec::new();
        while frames.len() < 3 {
            reader.fill(&b).unwrap();
            while let Some(frame) = reader.take_frame().unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames, [&b"one"[..], b"two", b"three"]);
        assert!(
            reader.take_fd().is_some(),
            "the descriptor arrived with its frame"
        );
        assert!(reader.take_fd().is_none());
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

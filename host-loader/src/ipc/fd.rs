//! Passing file descriptors over a Unix socket (`SCM_RIGHTS`) together with some bytes.

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Most descriptors accepted in one message; more is a protocol error (and the kernel closes
/// what did not fit).
pub const MAX_FDS_PER_MESSAGE: usize = 4;

/// Sends `bytes` with `fds` attached to the first byte. Retries `EINTR` and short writes; the
/// descriptors travel once.
pub fn send_with_fds(socket: &impl AsRawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut sent = 0;
    while sent < bytes.len() {
        let rest = bytes.get(sent..).unwrap_or_default();
        let iov = [IoSlice::new(rest)];
        let rights = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage<'_>] = if sent == 0 && !fds.is_empty() {
            &rights
        } else {
            &[]
        };
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// One `sendmsg` of `bytes` (with `fds` attached when not empty): returns how many bytes went
/// out. `EINTR` and `EAGAIN` are returned to the caller.
pub fn send_some(socket: &impl AsRawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let iov = [IoSlice::new(bytes)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(io::Error::from)
}

/// One `recvmsg`: reads into `buf`, returns how many bytes arrived (0 at end of stream) and the
/// descriptors that came with them (close-on-exec). More than [`MAX_FDS_PER_MESSAGE`]
/// descriptors, or a truncated control message, is an error (the received ones are closed).
pub fn recv_with_fds(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS_PER_MESSAGE]);
    let msg = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => break msg,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut received: Vec<OwnedFd> = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel just installed `fd` in our table for this message; nothing
                // else owns it, so taking ownership (and closing it on drop) is sound.
                received.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) || received.len() > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer sent more than {MAX_FDS_PER_MESSAGE} descriptors in one message"),
        ));
    }
    Ok((msg.bytes, received))
}

/// Sends one descriptor with a one-byte marker.
pub fn send_fd(socket: &impl AsRawFd, fd: RawFd) -> io::Result<()> {
    send_with_fds(socket, b"F", &[fd])
}

/// Receives exactly one descriptor sent by [`send_fd`].
pub fn recv_fd(socket: &impl AsRawFd) -> io::Result<OwnedFd> {
    let mut marker = [0u8; 1];
    let (bytes, mut received) = recv_with_fds(socket, &mut marker)?;
    if bytes != 1 || received.len() != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "expected one descriptor with a marker, got {} descriptors and {bytes} bytes",
                received.len(),
            ),
        ));
    }
    Ok(received.remove(0))
}

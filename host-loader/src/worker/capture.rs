//! Collecting what workers write to stdout and stderr.
//!
//! Each worker's stdout and stderr are the write end of one pipe. One collector thread for the
//! whole host reads every such pipe (epoll) into that worker's [`Capture`], which keeps the last
//! [`CAPTURE_LIMIT`] bytes; a thread per worker would cost a thread start per launch and would
//! linger while a grandchild of the worker held the pipe open.
//!
//! The host also drains a pipe itself ([`Capture::text`]) before it reads the output, e.g. to
//! classify a dead worker from its last words; both readers take the capture's lock around
//! each read and append, so bytes are never reordered.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};

/// How much of a worker's output is kept (the most recent bytes).
pub const CAPTURE_LIMIT: usize = 64 * 1024;

/// One worker's captured output and the read end of its pipe.
#[derive(Debug)]
pub struct Capture {
    pipe: std::fs::File,
    state: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    bytes: Vec<u8>,
    dropped: u64,
    closed: bool,
}

impl Capture {
    /// Starts collecting from `pipe` (the read end; made non-blocking here).
    pub fn start(pipe: OwnedFd) -> io::Result<Arc<Capture>> {
        nix::fcntl::fcntl(
            &pipe,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        let capture = Arc::new(Capture {
            pipe: std::fs::File::from(pipe),
            state: Mutex::new(Kept::default()),
        });
        collector()?.watch(&capture)?;
        Ok(capture)
    }

    /// Reads whatever is in the pipe now. Returns `true` once the pipe is closed.
    fn drain(&self) -> bool {
        let mut kept = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut chunk = [0u8; 8192];
        while !kept.closed {
            match (&self.pipe).read(&mut chunk) {
                Ok(0) => kept.closed = true,
                Ok(n) => {
                    kept.bytes
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    if kept.bytes.len() > CAPTURE_LIMIT {
                        let excess = kept.bytes.len() - CAPTURE_LIMIT;
                        kept.bytes.drain(..excess);
                        kept.dropped += excess as u64;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        kept.closed
    }

    /// Everything kept so far (after reading what is waiting in the pipe), as text.
    pub fn text(&self) -> String {
        self.drain();
        let kept = self.state.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&kept.bytes).into_owned()
    }
}

#[derive(Debug)]
struct Collector {
    epoll: nix::sys::epoll::Epoll,
    watched: Mutex<HashMap<RawFd, Arc<Capture>>>,
}

fn collector() -> io::Result<&'static Collector> {
    static COLLECTOR: OnceLock<Collector> = OnceLock::new();
    if let Some(collector) = COLLECTOR.get() {
        return Ok(collector);
    }
    let epoll = nix::sys::epoll::Epoll::new(nix::sys::epoll::EpollCreateFlags::EPOLL_CLOEXEC)?;
    let collector = COLLECTOR.get_or_init(|| Collector {
        epoll,
        watched: Mutex::new(HashMap::new()),
    });
    static THREAD: OnceLock<io::Result<()>> = OnceLock::new();
    let started = THREAD.get_or_init(|| {
        std::thread::Builder::new()
            .name("worker-output".into())
            .spawn(move || collector.run())
            .map(|_| ())
    });
    match started {
        Ok(()) => Ok(collector),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    }
}

impl Collector {
    fn watch(&self, capture: &Arc<Capture>) -> io::Result<()> {
        use nix::sys::epoll::{EpollEvent, EpollFlags};
        let fd = capture.pipe.as_raw_fd();
        self.watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fd, Arc::clone(capture));
        let event = EpollEvent::new(EpollFlags::EPOLLIN, fd as u64);
        if let Err(e) = self.epoll.add(capture.pipe.as_fd(), event) {
            self.watched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&fd);
            return Err(e.into());
        }
        Ok(())
    }

    fn run(&self) {
        use nix::sys::epoll::{EpollEvent, EpollTimeout};
        let mut events = vec![EpollEvent::empty(); 64];
        loop {
            let ready = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                // Nothing sensible to do: output capture stops, workers are unaffected.
                Err(_) => return,
            };
            for event in events.iter().take(ready) {
                let fd = event.data() as RawFd;
                let capture = self
                    .watched
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&fd)
                    .cloned();
                let Some(capture) = capture else { continue };
                if capture.drain() {
                    // Closed: stop watching. The descriptor closes when the last Arc goes
                    // (after this removal), so its number cannot be reused while registered.
                    let _ = self.epoll.delete(capture.pipe.as_fd());
                    self.watched
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&fd);
                }
            }
        }
    }
}

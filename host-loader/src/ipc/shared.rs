//! Large payloads through shared memory: a sealed memfd passed with the frame that refers to it.
//!
//! A payload of [`SHARED_THRESHOLD`] bytes or more is written once into a memfd, sealed against
//! writes and resizing, and its descriptor travels with a small frame. The receiver maps it
//! read-only and reads the bytes in place: no copy through the socket buffers, and no
//! read-and-append loop on the receiving side.
//!
//! The receiver checks the descriptor before mapping it (the host treats a worker's descriptor
//! as hostile): it must carry the write, shrink and grow seals (so the bytes cannot change under
//! the reader and the mapping cannot fault), its size must equal the size the frame announced,
//! and that size is bounded by the frame limit, exactly as an inline payload is.

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Payloads at least this large go through a memfd instead of inline.
pub const SHARED_THRESHOLD: usize = 256 * 1024;

/// Seals that make a memfd's contents immutable.
fn required_seals() -> SealFlag {
    SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW
}

/// Copies `bytes` into a new memfd named `name` and seals it (write, shrink, grow, seal).
pub fn seal(name: &str, bytes: &[u8]) -> io::Result<OwnedFd> {
    let memfd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let mut file = std::fs::File::from(memfd);
    file.write_all(bytes)?;
    let memfd = OwnedFd::from(file);
    fcntl(
        &memfd,
        FcntlArg::F_ADD_SEALS(required_seals() | SealFlag::F_SEAL_SEAL),
    )?;
    Ok(memfd)
}

/// A read-only mapping of a sealed memfd.
#[derive(Debug)]
pub struct SharedBytes {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and its backing memfd is sealed against writes, so the bytes
// never change; sharing or sending the pointer across threads is sound.
unsafe impl Send for SharedBytes {}
// SAFETY: as above: immutable bytes.
unsafe impl Sync for SharedBytes {}

impl SharedBytes {
    /// Checks `fd` (sealed, exactly `len` bytes, `len <= max`) and maps it.
    pub fn map(fd: &impl AsFd, len: u64, max: usize) -> Result<SharedBytes, String> {
        let len = usize::try_from(len).map_err(|_| format!("shared payload of {len} bytes"))?;
        if len > max {
            return Err(format!(
                "shared payload of {len} bytes exceeds the {max}-byte frame limit"
            ));
        }
        let seals = fcntl(fd, FcntlArg::F_GET_SEALS)
            .map_err(|e| format!("shared payload is not a sealed memfd: {e}"))?;
        if !SealFlag::from_bits_truncate(seals).contains(required_seals()) {
            return Err("shared payload's memfd is not sealed against writes and resizing".into());
        }
        let stat = nix::sys::stat::fstat(fd).map_err(|e| format!("fstat: {e}"))?;
        if stat.st_size != len as i64 {
            return Err(format!(
                "shared payload announced {len} bytes but its memfd holds {}",
                stat.st_size
            ));
        }
        if len == 0 {
            return Ok(SharedBytes {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: maps `len` bytes of a descriptor we hold, read-only, at an address the kernel
        // chooses; the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!("mmap: {}", io::Error::last_os_error()));
        }
        Ok(SharedBytes { ptr, len })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives; the memfd is
        // sealed, so nothing can write to or shrink them.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for SharedBytes {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmaps exactly the mapping made in `map`, once.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_round_trip_and_checks() {
        let bytes: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let fd = seal("test", &bytes).unwrap();
        let mapped = SharedBytes::map(&fd, bytes.len() as u64, 1 << 20).unwrap();
        assert_eq!(mapped.as_slice(), &bytes[..]);
        // Wrong announced size, too large, and an unsealed memfd are all refused.
        assert!(
            SharedBytes::map(&fd, 10, 1 << 20)
                .unwrap_err()
                .contains("announced")
        );
        assert!(
            SharedBytes::map(&fd, bytes.len() as u64, 1000)
                .unwrap_err()
                .contains("exceeds")
        );
        let unsealed = memfd_create("x", MFdFlags::MFD_ALLOW_SEALING).unwrap();
        assert!(
            SharedBytes::map(&unsealed, 0, 10)
                .unwrap_err()
                .contains("not sealed")
        );
        let (pipe, _w) = nix::unistd::pipe().unwrap();
        assert!(
            SharedBytes::map(&pipe, 0, 10)
                .unwrap_err()
                .contains("not a sealed memfd")
        );
    }
}

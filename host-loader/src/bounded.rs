//! Reading files named from outside (plugins, policies, manifests, inputs, configurations):
//! never more than a limit, whatever the file's metadata says or however much a device yields,
//! and never blocked for good by a FIFO that has no writer.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads all of `path`, refusing more than `limit` bytes. `what` names the limit in the error
/// ("plugin size", "policy", ...). A FIFO is read like a pipe (a FIFO without a writer reads
/// as empty instead of blocking the open); a regular file larger than the limit is refused
/// before anything is read.
pub fn read_file(path: &Path, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    // O_NONBLOCK was for the open alone; reads block as usual.
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) - nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags))?;
    let metadata = file.metadata()?;
    if metadata.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory, not a file",
        ));
    }
    if metadata.is_file() && metadata.len() > limit {
        return Err(too_large(limit, what));
    }
    read_stream(file, limit, what)
}

/// Reads `reader` to its end, refusing more than `limit` bytes.
pub fn read_stream(reader: impl Read, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit, what));
    }
    Ok(bytes)
}

fn too_large(limit: u64, what: &str) -> io::Error {
    let size = if limit >= 1024 * 1024 && limit.is_multiple_of(1024 * 1024) {
        format!("{} MiB", limit / (1024 * 1024))
    } else {
        format!("{limit}-byte")
    };
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than the {size} {what} limit"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_for_files_devices_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_file(&file, 5, "test").unwrap(), b"12345");
        let error = read_file(&file, 4, "test").unwrap_err();
        assert_eq!(error.to_string(), "larger than the 4-byte test limit");
        // A device yields without end: refused at the limit.
        let error = read_file(Path::new("/dev/zero"), 1024 * 1024, "input").unwrap_err();
        assert_eq!(error.to_string(), "larger than the 1 MiB input limit");
        // A FIFO with no writer reads as empty instead of blocking.
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(read_file(&fifo, 10, "test").unwrap(), b"");
        assert!(read_file(dir.path(), 10, "test").is_err());
    }
}

//! The API's bearer token: created at the first `serve` in `<data-dir>/api-token` with mode
//! 0600 (32 random bytes from the OS, hex), checked on every request.
//!
//! A token file that others can read is refused rather than used: anyone who can read it can
//! drive the host.
#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The token file's name in the data dir.
pub const TOKEN_FILE: &str = "api-token";

/// The token file of `data_dir`.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// Reads the token from `data_dir`, creating it (mode 0600) if there is none yet.
///
/// A new token is written to a temporary file and linked into place, so a second `serve`
/// starting at the same moment reads a whole token, never an empty file.
pub fn load_or_create(data_dir: &Path) -> io::Result<String> {
    let path = token_path(data_dir);
    let named =
        |error: io::Error| io::Error::new(error.kind(), format!("{}: {error}", path.display()));
    match read(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let temp = data_dir.join(format!(".{TOKEN_FILE}.{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(named)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| named(io::Error::other(e.to_string())))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let written = file
        .write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::hard_link(&temp, &path));
    let _ = fs::remove_file(&temp);
    match written {
        Ok(()) => Ok(token),
        // Another `serve` linked its token first: use that one.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(named(e)),
    }
}

/// Reads the token file: not through a symbolic link, a regular file of this user that no
/// one else can read, checked on the open descriptor (no window between check and read).
fn read(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let refuse = |kind, why: String| {
        io::Error::new(
            kind,
            format!("{}: {why}; delete it to make a new one", path.display()),
        )
    };
    let file = fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO in its place must not block the open (it is refused below).
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse(
                io::ErrorKind::PermissionDenied,
                "the API token is a symbolic link".into(),
            ),
            _ => e,
        })?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(refuse(
            io::ErrorKind::InvalidData,
            "the API token is not a regular file".into(),
        ));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if metadata.uid() != euid {
        return Err(refuse(
            io::ErrorKind::PermissionDenied,
            format!(
                "the API token belongs to uid {}, not to this user ({euid})",
                metadata.uid()
            ),
        ));
    }
    if metadata.mode() & 0o077 != 0 {
        return Err(refuse(
            io::ErrorKind::PermissionDenied,
            format!(
                "the API token is accessible to other users (mode {:o}): `chmod 600` it if no one else \
                 has read it",
                metadata.mode() & 0o777
            ),
        ));
    }
    let mut token = String::new();
    file.take(4096)
        .read_to_string(&mut token)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let token = token.trim().to_string();
    if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refuse(
            io::ErrorKind::InvalidData,
            "not a usable API token (at least 32 printable characters)".into(),
        ));
    }
    Ok(token)
}

/// Whether an `Authorization` header value carries `token` (`Bearer <token>`), compared in
/// time independent of where the first difference is.
pub fn authorized(header: Option<&[u8]>, token: &str) -> Result<(), &'static str> {
    let Some(header) = header else {
        return Err(
            "missing bearer token: send `Authorization: Bearer <token>` (the token is in the data dir's api-token file)",
        );
    };
    // The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
    let given = match header.split_at_checked(7) {
        Some((scheme, given)) if scheme.eq_ignore_ascii_case(b"bearer ") => given,
        _ => return Err("the Authorization header is not `Bearer <token>`"),
    };
    let expected = token.as_bytes();
    let same = given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err("invalid bearer token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_token_is_created_once_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let token = load_or_create(dir.path()).unwrap();
        assert_eq!(token.len(), 64);
        let mode = fs::metadata(token_path(dir.path())).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(dir.path()).unwrap(), token);
        assert!(authorized(Some(format!("Bearer {token}").as_bytes()), &token).is_ok());
        assert!(authorized(Some(format!("bearer {token}").as_bytes()), &token).is_ok());
        assert!(authorized(Some(b"Bearer nope"), &token).is_err());
        assert!(authorized(Some(b"Bear"), &token).is_err());
        assert!(authorized(None, &token).is_err());
        fs::set_permissions(token_path(dir.path()), fs::Permissions::from_mode(0o644)).unwrap();
        let error = load_or_create(dir.path()).unwrap_err();
        assert!(
            error.to_string().contains("accessible to other users"),
            "{error}"
        );
        // A symbolic link in its place is refused, not followed.
        let elsewhere = dir.path().join("elsewhere");
        fs::rename(token_path(dir.path()), &elsewhere).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, token_path(dir.path())).unwrap();
        let error = load_or_create(dir.path()).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
    }
}

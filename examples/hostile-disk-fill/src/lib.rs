//! Hostile: fills its working directory with 1 MiB writes, moving to a new file whenever the
//! file size limit bites, until 1 GiB is written. `RLIMIT_FSIZE` alone does not stop it (it only
//! caps each file); a disk quota, a size-limited data dir or the broker's file budget must.
use hostile_common::Attempt;
use plugin_sdk::{Story, hook, plugin};
use std::io::Write;

plugin! {
    name: "hostile-disk-fill",
    description: "Tries to fill the disk from its working directory",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 5000 },
}

const CHUNK: usize = 1024 * 1024;
const GOAL: u64 = 1024 * 1024 * 1024;

/// Writes 1 MiB chunks to `fill-0`, `fill-1`, ... until an error other than a full file, or
/// 1 GiB.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let _ = story;
    // SAFETY: ignoring SIGXFSZ installs no handler; the size limit then shows up as EFBIG.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let chunk = vec![b'x'; CHUNK];
    let mut total: u64 = 0;
    let mut files = 0;
    let stopped_by = 'files: loop {
        let name = format!("fill-{files}");
        let mut file = match std::fs::File::create(&name) {
            Ok(file) => file,
            Err(error) => break format!("creating {name}: {error}"),
        };
        files += 1;
        let mut in_file: u64 = 0;
        loop {
            if total >= GOAL {
                break 'files "nothing: 1 GiB written".to_string();
            }
            match file.write(&chunk) {
                Ok(0) => break 'files format!("{name}: write returned 0"),
                Ok(n) => {
                    total += n as u64;
                    in_file += n as u64;
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) if error.raw_os_error() == Some(libc::EFBIG) && in_file > 0 => {
                    continue 'files;
                }
                Err(error) => break 'files format!("{name}: {error}"),
            }
        }
    };
    Attempt {
        escaped: total >= GOAL,
        detail: format!("wrote {total} bytes in {files} files, stopped by: {stopped_by}"),
    }
}

//! Starting the `plugin-worker` executable: the launcher (see [`super::launcher`]), or one
//! worker per process in exec mode.
//!
//! It is started with `posix_spawn` semantics (std's `Command` without `pre_exec`), so the cost
//! does not grow with the host's memory and no forked copy of a multi-threaded host ever runs
//! code. Every spawn happens on one dedicated thread that lives as long as the host process:
//! `PR_SET_PDEATHSIG` is tied to the spawning *thread* (for workers forked by the launcher with
//! `CLONE_PARENT`, to the thread that spawned the launcher), and this thread never exits before
//! the process does.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

/// Environment variable naming the worker executable, overriding the search.
pub const WORKER_EXE_ENV: &str = "PLUGIN_WORKER_EXE";
/// File name of the worker executable.
pub const WORKER_EXE_NAME: &str = "plugin-worker";

type Request = (Command, Sender<io::Result<Child>>);

static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();

fn spawner() -> &'static Mutex<Sender<Request>> {
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        std::thread::Builder::new()
            .name("plugin-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("cannot start the worker spawner thread");
        Mutex::new(tx)
    })
}

/// Spawns `command` from the spawner thread.
pub fn spawn(command: Command) -> io::Result<Child> {
    let (tx, rx) = channel();
    spawner()
        .lock()
        .map_err(|_| io::Error::other("spawner lock poisoned"))?
        .send((command, tx))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))?
}

/// Finds the worker executable: `$PLUGIN_WORKER_EXE`, else next to the current executable, else
/// one directory up (test binaries live in `target/<profile>/deps`).
pub fn find_worker_exe() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os(WORKER_EXE_ENV) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    for candidate in [
        dir.join(WORKER_EXE_NAME),
        dir.join("..").join(WORKER_EXE_NAME),
    ] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "cannot find the `{WORKER_EXE_NAME}` executable next to {}; build it (`cargo build -p host-loader`) or set {WORKER_EXE_ENV}",
            exe.display()
        ),
    ))
}

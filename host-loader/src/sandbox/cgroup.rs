//! Parent-side cgroups for one worker, where the machine offers them: memory (v2 or v1) and
//! tasks (the v1 pids hierarchy, [`PidsCgroup`]).
//!
//! With a cgroup, the memory limit is enforced on resident memory by the kernel, which
//! OOM-kills the worker when it is exceeded and counts that event: the host then knows for a
//! fact that the call ended `memory_limit`. Without one, the worker's `RLIMIT_AS` is the limit
//! and the classification relies on the allocation-failure message (see `worker`).
//!
//! cgroup v2 is used when its memory controller is enabled at the root; otherwise the v1
//! memory hierarchy at `/sys/fs/cgroup/memory`. Both need write access (root, or delegation).
//!
//! Making and removing a cgroup directory costs about a tenth of a millisecond each, on the
//! launch path. So a keeper thread makes a few empty cgroups ahead of need and removes those of
//! finished workers in the background; a launch only writes the limit and moves the worker in.
//! Spares left by a host that died are removed by the next host's keeper.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

const V2_ROOT: &str = "/sys/fs/cgroup";
const V1_ROOT: &str = "/sys/fs/cgroup/memory";
const V1_PIDS_ROOT: &str = "/sys/fs/cgroup/pids";
const PARENT: &str = "plugin-host";

/// Which cgroup interface is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Unified hierarchy: `memory.max`, `memory.peak`, `memory.events`.
    V2,
    /// Legacy memory hierarchy: `memory.limit_in_bytes`, `memory.max_usage_in_bytes`,
    /// `memory.oom_control`.
    V1,
}

/// One worker's memory cgroup; removed on drop (after the worker has been reaped).
#[derive(Debug)]
pub struct MemoryCgroup {
    dir: PathBuf,
    version: Version,
}

/// Empty cgroups kept ready.
const SPARES: usize = 2;

/// The keeper: spare cgroup directories (memory, and pids in the v1 pids hierarchy), and a
/// channel to its thread.
struct Keeper {
    spares: Mutex<Vec<PathBuf>>,
    pids_spares: Mutex<Vec<PathBuf>>,
    requests: Mutex<Sender<KeeperRequest>>,
}

enum KeeperRequest {
    /// Make spares up to [`SPARES`].
    Replenish,
    /// Remove a finished worker's cgroup.
    Remove(PathBuf),
    /// Remove the spares, then answer: everything asked before is done.
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// The parent directory of every worker cgroup, set up once; `None` if the machine offers no
/// memory cgroup we can write to.
fn parent_dir() -> Option<&'static (PathBuf, Version)> {
    static PARENT_DIR: OnceLock<Option<(PathBuf, Version)>> = OnceLock::new();
    PARENT_DIR
        .get_or_init(|| {
            let (root, version) = if v2_has_memory() {
                (V2_ROOT, Version::V2)
            } else if v1_has_memory() {
                (V1_ROOT, Version::V1)
            } else {
                return None;
            };
            let parent = Path::new(root).join(PARENT);
            if !parent.exists() {
                fs::create_dir_all(&parent).ok()?;
                if version == Version::V2 {
                    fs::write(parent.join("cgroup.subtree_control"), "+memory").ok()?;
                }
            }
            remove_stale(&parent);
            Some((parent, version))
        })
        .as_ref()
}

/// `plugin-host` in the v1 pids hierarchy, created if needed, if the machine has one we can
/// write to. (On a unified v2 tree a process has one cgroup for all controllers; a pids limit
/// there would go with the memory cgroup, which this does not do yet.)
fn pids_parent_dir() -> Option<&'static PathBuf> {
    static PARENT_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    PARENT_DIR
        .get_or_init(|| {
            let parent = Path::new(V1_PIDS_ROOT).join(PARENT);
            if !Path::new(V1_PIDS_ROOT).join("cgroup.procs").exists() {
                return None;
            }
            if !parent.exists() {
                fs::create_dir(&parent).ok()?;
            }
            // A pids hierarchy: its non-root cgroups have `pids.max`.
            if !parent.join("pids.max").exists() {
                return None;
            }
            remove_stale(&parent);
            Some(parent)
        })
        .as_ref()
}

/// Removes empty `worker-<pid>-*` cgroups of hosts that are gone. It runs before this process
/// makes any, so one named with this process's own pid is a leftover of an earlier host that
/// had the same pid.
fn remove_stale(parent: &Path) {
    for entry in super::process::left_by_gone_hosts(parent, "worker-") {
        // Fails harmlessly if a process is still inside.
        let _ = fs::remove_dir(entry.path());
    }
}

static KEEPER: OnceLock<Keeper> = OnceLock::new();

fn keeper() -> &'static Keeper {
    KEEPER.get_or_init(|| {
        let (tx, rx) = channel::<KeeperRequest>();
        let started = std::thread::Builder::new()
            .name("cgroup-keeper".into())
            .spawn(move || {
                for request in rx {
                    match request {
                        KeeperRequest::Remove(dir) => {
                            let _ = fs::remove_dir(&dir);
                        }
                        KeeperRequest::Replenish => replenish(),
                        KeeperRequest::Flush(done) => {
                            for spares in [&keeper().spares, &keeper().pids_spares] {
                                let spares = spares
                                    .lock()
                                    .map(|mut spares| std::mem::take(&mut *spares))
                                    .unwrap_or_default();
                                for dir in spares {
                                    let _ = fs::remove_dir(&dir);
                                }
                            }
                            let _ = done.send(());
                        }
                    }
                }
            });
        if started.is_err() {
            // No thread: requests are dropped; creation falls back to mkdir on the spot and
            // removal to nothing (an empty directory stays, removed by the next host).
        }
        Keeper {
            spares: Mutex::new(Vec::new()),
            pids_spares: Mutex::new(Vec::new()),
            requests: Mutex::new(tx),
        }
    })
}

/// Waits (at most `timeout`) for the keeper to remove the cgroups of finished workers and its
/// spares, so that a program about to exit leaves no empty cgroup behind (the keeper thread dies
/// with the process). Returns whether it finished in time; nothing to do if no cgroup was made.
pub fn finish_background_work(timeout: std::time::Duration) -> bool {
    if KEEPER.get().is_none() {
        return true;
    }
    let (done, finished) = std::sync::mpsc::sync_channel(1);
    ask_keeper(KeeperRequest::Flush(done));
    finished.recv_timeout(timeout).is_ok()
}

fn replenish() {
    let memory = parent_dir().map(|(parent, _)| (parent, &keeper().spares));
    let pids = pids_parent_dir().map(|parent| (parent, &keeper().pids_spares));
    for (parent, spares) in [memory, pids].into_iter().flatten() {
        loop {
            let count = spares.lock().map(|s| s.len()).unwrap_or(SPARES);
            if count >= SPARES {
                break;
            }
            let Ok(dir) = make_dir(parent) else {
                break;
            };
            if let Ok(mut spares) = spares.lock() {
                spares.push(dir);
            }
        }
    }
}

/// A spare from `spares` (asking the keeper for more), else a new cgroup under `parent`.
fn take_spare_or_make(spares: &Mutex<Vec<PathBuf>>, parent: &Path) -> io::Result<PathBuf> {
    let spare = spares.lock().ok().and_then(|mut s| s.pop());
    ask_keeper(KeeperRequest::Replenish);
    match spare {
        Some(dir) => Ok(dir),
        None => make_dir(parent),
    }
}

/// Makes a new, empty cgroup under `parent`. A name already taken (by a cgroup that the stale
/// sweep could not remove because a process is still inside) is skipped, not an error.
fn make_dir(parent: &Path) -> io::Result<PathBuf> {
    let mut attempts = 0;
    loop {
        let dir = parent.join(next_name());
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 64 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

fn next_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "worker-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn ask_keeper(request: KeeperRequest) {
    if let Ok(requests) = keeper().requests.lock() {
        let _ = requests.send(request);
    }
}

fn v2_has_memory() -> bool {
    fs::read_to_string(Path::new(V2_ROOT).join("cgroup.subtree_control"))
        .is_ok_and(|controllers| controllers.split_whitespace().any(|c| c == "memory"))
}

fn v1_has_memory() -> bool {
    Path::new(V1_ROOT).join("memory.limit_in_bytes").exists()
}

impl MemoryCgroup {
    /// Which interface this machine offers, if any (looked up once).
    pub fn available() -> Option<Version> {
        parent_dir().map(|(_, version)| *version)
    }

    /// A cgroup for one worker, with `limit_bytes` of memory: a spare from the keeper, or a new
    /// one.
    pub fn create(limit_bytes: u64) -> io::Result<MemoryCgroup> {
        let (parent, version) = parent_dir()
            .ok_or_else(|| io::Error::other("no memory cgroup controller available"))?;
        let dir = take_spare_or_make(&keeper().spares, parent)?;
        let cgroup = MemoryCgroup {
            dir,
            version: *version,
        };
        match version {
            Version::V2 => {
                cgroup.write("memory.max", &limit_bytes.to_string())?;
                // No swap: the limit is on real memory.
                let _ = cgroup.write("memory.swap.max", "0");
            }
            Version::V1 => cgroup.write("memory.limit_in_bytes", &limit_bytes.to_string())?,
        }
        Ok(cgroup)
    }

    fn write(&self, file: &str, value: &str) -> io::Result<()> {
        fs::write(self.dir.join(file), value)
    }

    fn read(&self, file: &str) -> io::Result<String> {
        fs::read_to_string(self.dir.join(file))
    }

    /// Which interface this cgroup uses.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Moves `pid` into the cgroup.
    pub fn add(&self, pid: i32) -> io::Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// Peak memory charged to the cgroup, in bytes.
    pub fn peak_bytes(&self) -> Option<u64> {
        let file = match self.version {
            Version::V2 => "memory.peak",
            Version::V1 => "memory.max_usage_in_bytes",
        };
        self.read(file).ok()?.trim().parse().ok()
    }

    /// How many times the kernel OOM-killed a process of this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let file = match self.version {
            Version::V2 => "memory.events",
            Version::V1 => "memory.oom_control",
        };
        self.read(file)
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    line.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // In the background; the worker is reaped before this runs, so the cgroup is empty.
        ask_keeper(KeeperRequest::Remove(std::mem::take(&mut self.dir)));
    }
}

/// One worker's task cgroup in the v1 pids hierarchy: `pids.max` caps the threads and processes
/// of the worker and everything it starts, so a thread or fork bomb fails with `EAGAIN` instead
/// of filling the machine's process table. Removed on drop (after the worker has been reaped).
#[derive(Debug)]
pub struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// Whether this machine offers a pids hierarchy we can write to (looked up once).
    pub fn available() -> bool {
        pids_parent_dir().is_some()
    }

    /// A cgroup allowing at most `max_tasks` threads and processes in all.
    pub fn create(max_tasks: u64) -> io::Result<PidsCgroup> {
        let parent =
            pids_parent_dir().ok_or_else(|| io::Error::other("no pids cgroup hierarchy"))?;
        let cgroup = PidsCgroup {
            dir: take_spare_or_make(&keeper().pids_spares, parent)?,
        };
        fs::write(cgroup.dir.join("pids.max"), max_tasks.to_string())?;
        Ok(cgroup)
    }

    /// Moves `pid` into the cgroup.
    pub fn add(&self, pid: i32) -> io::Result<()> {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        ask_keeper(KeeperRequest::Remove(std::mem::take(&mut self.dir)));
    }
}

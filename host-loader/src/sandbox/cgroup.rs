//! Parent-side memory cgroup for one worker, where the machine offers one.
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

/// The keeper: spare cgroup directories, and a channel to its thread.
struct Keeper {
    spares: Mutex<Vec<PathBuf>>,
    requests: Mutex<Sender<KeeperRequest>>,
}

enum KeeperRequest {
    /// Make spares up to [`SPARES`].
    Replenish,
    /// Remove a finished worker's cgroup.
    Remove(PathBuf),
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

/// Removes empty `worker-<pid>-*` cgroups of hosts that are gone.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("worker-"))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            // Fails harmlessly if a process is still inside.
            let _ = fs::remove_dir(entry.path());
        }
    }
}

fn keeper() -> &'static Keeper {
    static KEEPER: OnceLock<Keeper> = OnceLock::new();
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
                    }
                }
            });
        if started.is_err() {
            // No thread: requests are dropped; creation falls back to mkdir on the spot and
            // removal to nothing (an empty directory stays, removed by the next host).
        }
        Keeper {
            spares: Mutex::new(Vec::new()),
            requests: Mutex::new(tx),
        }
    })
}

fn replenish() {
    let Some((parent, _)) = parent_dir() else {
        return;
    };
    loop {
        let count = keeper()
            .spares
            .lock()
            .map(|spares| spares.len())
            .unwrap_or(SPARES);
        if count >= SPARES {
            return;
        }
        let dir = parent.join(next_name());
        if fs::create_dir(&dir).is_err() {
            return;
        }
        if let Ok(mut spares) = keeper().spares.lock() {
            spares.push(dir);
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
        let spare = keeper().spares.lock().ok().and_then(|mut s| s.pop());
        ask_keeper(KeeperRequest::Replenish);
        let dir = match spare {
            Some(dir) => dir,
            None => {
                let dir = parent.join(next_name());
                fs::create_dir(&dir)?;
                dir
            }
        };
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

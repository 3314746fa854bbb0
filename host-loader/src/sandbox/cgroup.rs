//! Parent-side memory cgroup for one worker, where the machine offers one.
//!
//! With a cgroup, the memory limit is enforced on resident memory by the kernel, which
//! OOM-kills the worker when it is exceeded and counts that event: the host then knows for a
//! fact that the call ended `memory_limit`. Without one, the worker's `RLIMIT_AS` is the limit
//! and the classification relies on the allocation-failure message (see `worker`).
//!
//! cgroup v2 is used when its memory controller is enabled at the root; otherwise the v1
//! memory hierarchy at `/sys/fs/cgroup/memory`. Both need write access (root, or delegation).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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

fn v2_has_memory() -> bool {
    fs::read_to_string(Path::new(V2_ROOT).join("cgroup.subtree_control"))
        .is_ok_and(|controllers| controllers.split_whitespace().any(|c| c == "memory"))
}

fn v1_has_memory() -> bool {
    Path::new(V1_ROOT).join("memory.limit_in_bytes").exists()
}

impl MemoryCgroup {
    /// Which interface this machine offers, if any.
    pub fn available() -> Option<Version> {
        if v2_has_memory() {
            Some(Version::V2)
        } else if v1_has_memory() {
            Some(Version::V1)
        } else {
            None
        }
    }

    /// Creates the cgroup `name` with `limit_bytes` of memory.
    pub fn create(name: &str, limit_bytes: u64) -> io::Result<MemoryCgroup> {
        let version = Self::available()
            .ok_or_else(|| io::Error::other("no memory cgroup controller available"))?;
        let root = match version {
            Version::V2 => V2_ROOT,
            Version::V1 => V1_ROOT,
        };
        let parent = Path::new(root).join(PARENT);
        if version == Version::V2 && !parent.exists() {
            fs::create_dir_all(&parent)?;
            fs::write(parent.join("cgroup.subtree_control"), "+memory")?;
        }
        let dir = parent.join(name);
        fs::create_dir_all(&dir)?;
        let cgroup = MemoryCgroup { dir, version };
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
        // Fails only if a process is still inside; the worker is reaped before this runs.
        let _ = fs::remove_dir(&self.dir);
    }
}

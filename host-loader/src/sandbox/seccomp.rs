//! The seccomp allow-list (SPEC §7 step 9), as data, and its compilation and installation.
//!
//! [`SyscallPolicy::for_grants`] is the one place that says which system calls a worker may
//! make: [`BASE`] for every plugin (what the Rust and C runtimes, the dynamic loader and the
//! worker's own serve loop need), [`SPAWN`] only with `process.spawn`, [`NET`] only with
//! `net.connect`. Three calls are allowed only with arguments checked: `clone` only for threads
//! (`CLONE_THREAD` set, no namespace flags), `ioctl` only for a few harmless terminal/fd
//! requests (compared on the low 32 bits, as the kernel does), `prctl` only for naming threads
//! and reading state. `clone3` and io_uring are answered `ENOSYS` (glibc then falls back to
//! `clone`, which the filter can inspect; `clone3` takes its flags in memory, which it cannot).
//!
//! Everything else is denied, and in particular, always: `ptrace`, `process_vm_*`, `bpf`,
//! `perf_event_open`, `userfaultfd`, `keyctl`, `mount` and the new mount API, `unshare`,
//! `setns`, `pidfd_getfd`, `seccomp` (a plugin cannot install a filter of its own), and every
//! x32 system call number. A foreign architecture kills the process outright.
//!
//! A denied call is not answered by the filter: it goes to the host as a **user notification**
//! (`SECCOMP_RET_USER_NOTIF`). The worker installs the filter with
//! `SECCOMP_FILTER_FLAG_NEW_LISTENER` and passes the listener to the host before the plugin is
//! loaded; the kernel writes the blocked call's number there. The host names the call from that
//! number and kills the worker with `violation` (see `worker`): the name comes from the kernel,
//! not from anything the plugin can write. The blocked thread never runs again.
//!
//! `seccompiler` builds the programs (argument comparisons, architecture check). It has no
//! user-notification action, so the allow-list is built with `Trap` as its "deny" action and
//! every `SECCOMP_RET_TRAP` return is then rewritten to `SECCOMP_RET_USER_NOTIF`
//! ([`notify_on_deny`]); the unit tests run the final program through a small BPF interpreter.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::OnceLock;
use syscalls::Sysno;

/// Every plugin: memory, threads (see the `clone` rule), time, signals to itself, files (which
/// Landlock confines), the IPC channel, and exit.
pub const BASE: &[Sysno] = &[
    // Memory.
    Sysno::brk,
    Sysno::mmap,
    Sysno::munmap,
    Sysno::mremap,
    Sysno::mprotect,
    Sysno::madvise,
    Sysno::mincore,
    Sysno::msync,
    Sysno::membarrier,
    // Threads and synchronisation (clone: see THREAD_CLONE).
    Sysno::futex,
    Sysno::set_robust_list,
    Sysno::get_robust_list,
    Sysno::rseq,
    Sysno::set_tid_address,
    Sysno::sched_yield,
    Sysno::sched_getaffinity,
    Sysno::getcpu,
    Sysno::arch_prctl,
    // Identity (read only).
    Sysno::getpid,
    Sysno::gettid,
    Sysno::getppid,
    Sysno::getuid,
    Sysno::geteuid,
    Sysno::getgid,
    Sysno::getegid,
    Sysno::getpgrp,
    Sysno::getpgid,
    Sysno::getsid,
    Sysno::getrusage,
    Sysno::getrlimit,
    Sysno::uname,
    Sysno::sysinfo,
    Sysno::getrandom,
    // Time.
    Sysno::clock_gettime,
    Sysno::clock_getres,
    Sysno::clock_nanosleep,
    Sysno::nanosleep,
    Sysno::gettimeofday,
    Sysno::time,
    Sysno::times,
    Sysno::getitimer,
    Sysno::setitimer,
    Sysno::alarm,
    Sysno::timer_create,
    Sysno::timer_settime,
    Sysno::timer_gettime,
    Sysno::timer_getoverrun,
    Sysno::timer_delete,
    Sysno::timerfd_create,
    Sysno::timerfd_settime,
    Sysno::timerfd_gettime,
    // Signals. Signalling other processes is confined by Landlock's signal scope and the PID
    // namespace.
    Sysno::rt_sigaction,
    Sysno::rt_sigprocmask,
    Sysno::rt_sigreturn,
    Sysno::rt_sigpending,
    Sysno::rt_sigtimedwait,
    Sysno::rt_sigsuspend,
    Sysno::rt_sigqueueinfo,
    Sysno::rt_tgsigqueueinfo,
    Sysno::sigaltstack,
    Sysno::kill,
    Sysno::tgkill,
    Sysno::tkill,
    Sysno::pause,
    Sysno::restart_syscall,
    // Descriptors and files (paths are confined by Landlock).
    Sysno::read,
    Sysno::write,
    Sysno::readv,
    Sysno::writev,
    Sysno::pread64,
    Sysno::pwrite64,
    Sysno::preadv,
    Sysno::pwritev,
    Sysno::preadv2,
    Sysno::pwritev2,
    Sysno::lseek,
    Sysno::close,
    Sysno::close_range,
    Sysno::dup,
    Sysno::dup2,
    Sysno::dup3,
    Sysno::fcntl,
    Sysno::flock,
    Sysno::fsync,
    Sysno::fdatasync,
    Sysno::ftruncate,
    Sysno::fallocate,
    Sysno::fadvise64,
    Sysno::open,
    Sysno::openat,
    Sysno::creat,
    Sysno::stat,
    Sysno::fstat,
    Sysno::lstat,
    Sysno::newfstatat,
    Sysno::statx,
    Sysno::statfs,
    Sysno::fstatfs,
    Sysno::access,
    Sysno::faccessat,
    Sysno::faccessat2,
    Sysno::readlink,
    Sysno::readlinkat,
    Sysno::getdents64,
    Sysno::getcwd,
    Sysno::chdir,
    Sysno::fchdir,
    Sysno::mkdir,
    Sysno::mkdirat,
    Sysno::rmdir,
    Sysno::unlink,
    Sysno::unlinkat,
    Sysno::rename,
    Sysno::renameat,
    Sysno::renameat2,
    Sysno::truncate,
    Sysno::umask,
    Sysno::pipe,
    Sysno::pipe2,
    Sysno::eventfd2,
    Sysno::memfd_create,
    // Waiting on descriptors.
    Sysno::poll,
    Sysno::ppoll,
    Sysno::select,
    Sysno::pselect6,
    Sysno::epoll_create1,
    Sysno::epoll_ctl,
    Sysno::epoll_wait,
    Sysno::epoll_pwait,
    Sysno::epoll_pwait2,
    // The IPC channel (an existing, connected socket; creating sockets needs `net.connect`).
    Sysno::recvmsg,
    Sysno::sendmsg,
    Sysno::recvfrom,
    Sysno::sendto,
    // Reaping: the worker is its PID namespace's init.
    Sysno::wait4,
    Sysno::waitid,
    // The end.
    Sysno::exit,
    Sysno::exit_group,
];

/// Only with `process.spawn`: new processes and programs.
pub const SPAWN: &[Sysno] = &[
    Sysno::fork,
    Sysno::vfork,
    Sysno::execve,
    Sysno::execveat,
    Sysno::setsid,
    Sysno::setpgid,
];

/// Only with `net.connect`: sockets (Landlock limits TCP to the granted ports).
pub const NET: &[Sysno] = &[
    Sysno::socket,
    Sysno::connect,
    Sysno::getsockopt,
    Sysno::setsockopt,
    Sysno::getsockname,
    Sysno::getpeername,
    Sysno::sendmmsg,
    Sysno::recvmmsg,
    Sysno::shutdown,
];

/// Answered `ENOSYS` instead of being reported: the C library falls back to something the
/// filter can inspect (`clone3` to `clone`), and io_uring would let a plugin make system calls
/// the filter never sees.
pub const ENOSYS: &[Sysno] = &[
    Sysno::clone3,
    Sysno::io_uring_setup,
    Sysno::io_uring_enter,
    Sysno::io_uring_register,
];

/// `ioctl` requests allowed: terminal probes by the C library's stdio, and descriptor flags.
pub const IOCTLS: &[u64] = &[
    libc::TCGETS,
    libc::TIOCGWINSZ,
    libc::FIONBIO,
    libc::FIONREAD,
    libc::FIOCLEX,
    libc::FIONCLEX,
];

/// `prctl` options allowed: thread names, and reading process state.
pub const PRCTLS: &[u64] = &[
    libc::PR_SET_NAME as u64,
    libc::PR_GET_NAME as u64,
    libc::PR_GET_DUMPABLE as u64,
    libc::PR_GET_NO_NEW_PRIVS as u64,
    libc::PR_GET_SECCOMP as u64,
    libc::PR_CAPBSET_READ as u64,
    libc::PR_GET_TIMERSLACK as u64,
    libc::PR_SET_VMA as u64,
];

/// Namespace flags a thread-creating `clone` must not carry.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// Bit that marks x32 system call numbers on x86_64.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// What the granted permissions open in the filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyscallGrants {
    /// `process.spawn`: fork and exec.
    pub spawn: bool,
    /// `net.connect`: sockets.
    pub net: bool,
}

/// The allowed system calls, with their argument rules.
#[derive(Debug)]
pub struct SyscallPolicy {
    rules: BTreeMap<i64, Vec<SeccompRule>>,
}

fn rule(conditions: Vec<SeccompCondition>) -> SeccompRule {
    SeccompRule::new(conditions).expect("static seccomp rule is valid")
}

fn condition(arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, len, op, value).expect("static seccomp condition is valid")
}

impl SyscallPolicy {
    /// The allow-list for a plugin with these grants.
    pub fn for_grants(grants: SyscallGrants) -> SyscallPolicy {
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        let mut allow = |list: &[Sysno]| {
            for sysno in list {
                rules.insert(sysno.id() as i64, Vec::new());
            }
        };
        allow(BASE);
        if grants.spawn {
            allow(SPAWN);
        }
        if grants.net {
            allow(NET);
        }
        // clone: threads only (CLONE_THREAD set, no namespace flag), unless spawning is
        // granted, and never a new namespace.
        let no_namespaces = condition(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(CLONE_NAMESPACE_FLAGS),
            0,
        );
        let clone_rule = if grants.spawn {
            vec![rule(vec![no_namespaces])]
        } else {
            vec![rule(vec![
                condition(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
                    libc::CLONE_THREAD as u64,
                ),
                no_namespaces,
            ])]
        };
        rules.insert(Sysno::clone.id() as i64, clone_rule);
        // ioctl's request is an `unsigned int` in the kernel: compare the low 32 bits only, so
        // garbage in the upper half cannot dodge (or wrongly match) the rule.
        rules.insert(
            Sysno::ioctl.id() as i64,
            IOCTLS
                .iter()
                .map(|request| {
                    rule(vec![condition(
                        1,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::Eq,
                        *request & 0xffff_ffff,
                    )])
                })
                .collect(),
        );
        rules.insert(
            Sysno::prctl.id() as i64,
            PRCTLS
                .iter()
                .map(|option| {
                    rule(vec![condition(
                        0,
                        SeccompCmpArgLen::Dword,
                        SeccompCmpOp::Eq,
                        *option,
                    )])
                })
                .collect(),
        );
        // getrlimit through prlimit64: only on itself and only reading (new limit NULL).
        rules.insert(
            Sysno::prlimit64.id() as i64,
            vec![rule(vec![
                condition(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 0),
                condition(2, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, 0),
            ])],
        );
        SyscallPolicy { rules }
    }

    /// Whether `sysno` is allowed for some arguments.
    pub fn mentions(&self, sysno: Sysno) -> bool {
        self.rules.contains_key(&(sysno.id() as i64))
    }

    /// Number of system calls allowed (some with argument rules).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether nothing is allowed (never, for a real policy).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Compiles the two programs: the allow-list (denials go to the listener) and the `ENOSYS`
    /// answers.
    pub fn compile(self) -> io::Result<Programs> {
        let arch = TargetArch::try_from(std::env::consts::ARCH)
            .map_err(|e| io::Error::other(format!("seccomp: {e}")))?;
        let allow_list =
            SeccompFilter::new(self.rules, SeccompAction::Trap, SeccompAction::Allow, arch)
                .and_then(BpfProgram::try_from)
                .map_err(|e| io::Error::other(format!("seccomp allow-list: {e}")))?;
        let enosys_rules = ENOSYS
            .iter()
            .map(|sysno| (sysno.id() as i64, Vec::new()))
            .collect();
        let enosys = SeccompFilter::new(
            enosys_rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )
        .and_then(BpfProgram::try_from)
        .map_err(|e| io::Error::other(format!("seccomp ENOSYS filter: {e}")))?;
        Ok(Programs {
            allow_list: notify_on_deny(deny_x32(allow_list)),
            enosys,
        })
    }
}

/// The compiled programs of each combination of grants, compiled once per process.
static COMPILED: [OnceLock<Result<Programs, String>>; 4] = [
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
];

/// The compiled programs for `grants`, from a per-process cache. The launcher fills it with
/// [`precompile`] before it forks any worker, so a worker inherits the programs instead of
/// compiling them on its cold-start path (a few hundred microseconds each time).
pub fn programs_for(grants: SyscallGrants) -> io::Result<&'static Programs> {
    let slot = usize::from(grants.spawn) * 2 + usize::from(grants.net);
    let compiled = COMPILED
        .get(slot)
        .ok_or_else(|| io::Error::other("seccomp: no cache slot"))?
        .get_or_init(|| {
            SyscallPolicy::for_grants(grants)
                .compile()
                .map_err(|e| e.to_string())
        });
    compiled.as_ref().map_err(|e| io::Error::other(e.clone()))
}

/// Compiles the programs of every combination of grants into the cache (see
/// [`programs_for`]). Errors are kept and reported when a worker needs those programs.
pub fn precompile() {
    for spawn in [false, true] {
        for net in [false, true] {
            let _ = programs_for(SyscallGrants { spawn, net });
        }
    }
}

/// The compiled filters.
#[derive(Debug)]
pub struct Programs {
    /// The allow-list; denied calls go to the listener.
    pub allow_list: BpfProgram,
    /// `ENOSYS` for [`ENOSYS`], everything else allowed (the allow-list still applies).
    pub enosys: BpfProgram,
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_RET_K: u16 = 0x06;
/// `SECCOMP_RET_USER_NOTIF` (not in every libc crate version).
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;

/// Inserts, right after seccompiler's architecture check, "x32 number: deny" (to the listener,
/// like every denial).
fn deny_x32(mut program: BpfProgram) -> BpfProgram {
    // seccompiler's program starts with: load arch; jeq native ? skip 1 : 0; ret kill.
    let check = [
        seccompiler::sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0, // seccomp_data.nr
        },
        seccompiler::sock_filter {
            code: BPF_JMP_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        seccompiler::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_TRAP,
        },
    ];
    let at = 3.min(program.len());
    program.splice(at..at, check);
    program
}

/// Rewrites every `return SECCOMP_RET_TRAP` (seccompiler's stand-in for "deny") into
/// `return SECCOMP_RET_USER_NOTIF`.
fn notify_on_deny(mut program: BpfProgram) -> BpfProgram {
    for instruction in &mut program {
        if instruction.code == BPF_RET_K && instruction.k == libc::SECCOMP_RET_TRAP {
            instruction.k = SECCOMP_RET_USER_NOTIF;
        }
    }
    program
}

const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;

/// Installs both programs on the calling (single) thread and returns the listener of the
/// allow-list. Requires `no_new_privs` (or `CAP_SYS_ADMIN`).
pub fn install(programs: &Programs) -> io::Result<OwnedFd> {
    load(&programs.enosys, 0)?;
    let fd = load(&programs.allow_list, SECCOMP_FILTER_FLAG_NEW_LISTENER)?;
    // SAFETY: with NEW_LISTENER, seccomp() returns a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn load(program: &BpfProgram, flags: libc::c_ulong) -> io::Result<libc::c_long> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len())
            .map_err(|_| io::Error::other("seccomp program too long"))?,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc)
}

/// The name of system call `nr` on this architecture, as the kernel reported it.
pub fn syscall_name(nr: i32) -> String {
    if nr >= 0 && (nr as u32) & X32_SYSCALL_BIT != 0 {
        let base = (nr as u32 & !X32_SYSCALL_BIT) as usize;
        return match Sysno::new(base) {
            Some(sysno) => format!("x32 {}", sysno.name()),
            None => format!("x32 syscall {base}"),
        };
    }
    match usize::try_from(nr).ok().and_then(Sysno::new) {
        Some(sysno) => sysno.name().to_string(),
        None => format!("syscall {nr}"),
    }
}

/// `struct seccomp_notif` (linux/seccomp.h).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SeccompNotif {
    /// Cookie for the response.
    pub id: u64,
    /// Thread that made the call (in the listener's PID namespace).
    pub pid: u32,
    /// Unused.
    pub flags: u32,
    /// System call number.
    pub nr: i32,
    /// `AUDIT_ARCH_*`.
    pub arch: u32,
    /// Instruction pointer.
    pub instruction_pointer: u64,
    /// Arguments.
    pub args: [u64; 6],
}

/// `SECCOMP_IOCTL_NOTIF_RECV` = `_IOWR('!', 0, struct seccomp_notif)`.
const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;

/// Receives one pending notification from a listener (the caller polled it readable).
pub fn receive_notification(listener: &OwnedFd) -> io::Result<SeccompNotif> {
    use std::os::fd::AsRawFd;
    let mut notif = SeccompNotif::default();
    // SAFETY: the ioctl writes one `struct seccomp_notif` (80 bytes, zeroed as required) into
    // `notif`, which is `repr(C)` with that layout.
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            SECCOMP_IOCTL_NOTIF_RECV,
            &mut notif as *mut SeccompNotif,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(notif)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `struct seccomp_data` as the filter sees it.
    struct Data {
        nr: i32,
        arch: u32,
        args: [u64; 6],
    }

    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

    fn data(sysno: Sysno, args: [u64; 6]) -> Data {
        Data {
            nr: sysno.id(),
            arch: AUDIT_ARCH_X86_64,
            args,
        }
    }

    /// A classic-BPF interpreter for the instructions seccomp programs use: what the kernel
    /// would return for `data`.
    fn run(program: &[seccompiler::sock_filter], data: &Data) -> u32 {
        let word = |offset: u32| -> u32 {
            match offset {
                0 => data.nr as u32,
                4 => data.arch,
                8..=15 => 0, // instruction pointer
                16..=63 => {
                    let index = ((offset - 16) / 8) as usize;
                    let arg = data.args[index];
                    if (offset - 16).is_multiple_of(8) {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                _ => panic!("load from offset {offset}"),
            }
        };
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = &program[pc];
            let class = i.code & 0x07;
            let op = i.code & 0xf0;
            let src_x = i.code & 0x08 != 0;
            assert!(!src_x, "unexpected X-register instruction");
            match class {
                0x00 => {
                    acc = word(i.k);
                    pc += 1;
                }
                0x04 => {
                    acc = match op {
                        0x50 => acc & i.k,
                        0x40 => acc | i.k,
                        other => panic!("alu op {other:#x}"),
                    };
                    pc += 1;
                }
                0x05 => {
                    let taken = match op {
                        0x00 => {
                            pc += i.k as usize + 1;
                            continue;
                        }
                        0x10 => acc == i.k,
                        0x20 => acc > i.k,
                        0x30 => acc >= i.k,
                        0x40 => acc & i.k != 0,
                        other => panic!("jump op {other:#x}"),
                    };
                    pc += 1 + if taken { i.jt } else { i.jf } as usize;
                }
                0x06 => return i.k,
                other => panic!("instruction class {other:#x}"),
            }
        }
    }

    /// The action the kernel takes with both filters installed (the stronger one wins).
    fn verdict(programs: &Programs, data: &Data) -> u32 {
        let a = run(&programs.allow_list, data);
        let b = run(&programs.enosys, data);
        let rank = |action: u32| match action & 0xffff_0000 {
            0x8000_0000 => 0, // kill process
            0x0000_0000 => 1, // kill thread
            0x0003_0000 => 2, // trap
            0x0005_0000 => 3, // errno
            0x7fc0_0000 => 4, // user notif
            0x7ff0_0000 => 5, // trace
            0x7ffc_0000 => 6, // log
            0x7fff_0000 => 7, // allow
            other => panic!("action {other:#x}"),
        };
        if rank(a) <= rank(b) { a } else { b }
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const ENOSYS_ERR: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    fn programs(grants: SyscallGrants) -> Programs {
        SyscallPolicy::for_grants(grants).compile().unwrap()
    }

    #[test]
    fn base_calls_are_allowed_and_dangerous_ones_are_reported() {
        let p = programs(SyscallGrants::default());
        for sysno in [
            Sysno::read,
            Sysno::write,
            Sysno::futex,
            Sysno::mmap,
            Sysno::exit_group,
        ] {
            assert_eq!(verdict(&p, &data(sysno, [0; 6])), ALLOW, "{sysno}");
        }
        for sysno in [
            Sysno::ptrace,
            Sysno::process_vm_readv,
            Sysno::process_vm_writev,
            Sysno::bpf,
            Sysno::perf_event_open,
            Sysno::userfaultfd,
            Sysno::keyctl,
            Sysno::mount,
            Sysno::fsopen,
            Sysno::move_mount,
            Sysno::unshare,
            Sysno::setns,
            Sysno::pidfd_getfd,
            Sysno::seccomp,
            Sysno::execve,
            Sysno::fork,
            Sysno::socket,
            Sysno::setuid,
            Sysno::chroot,
        ] {
            assert_eq!(
                verdict(&p, &data(sysno, [0; 6])),
                SECCOMP_RET_USER_NOTIF,
                "{sysno} must be reported"
            );
        }
    }

    #[test]
    fn clone_only_for_threads_and_clone3_io_uring_get_enosys() {
        let p = programs(SyscallGrants::default());
        let thread_flags = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(
            verdict(&p, &data(Sysno::clone, [thread_flags, 0, 0, 0, 0, 0])),
            ALLOW
        );
        let fork_flags =
            (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u64 | libc::SIGCHLD as u64;
        assert_eq!(
            verdict(&p, &data(Sysno::clone, [fork_flags, 0, 0, 0, 0, 0])),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            verdict(
                &p,
                &data(
                    Sysno::clone,
                    [thread_flags | libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]
                )
            ),
            SECCOMP_RET_USER_NOTIF
        );
        for sysno in ENOSYS {
            assert_eq!(verdict(&p, &data(*sysno, [0; 6])), ENOSYS_ERR, "{sysno}");
        }
        // With process.spawn, fork-like clones pass, namespaces still do not.
        let spawn = programs(SyscallGrants {
            spawn: true,
            net: false,
        });
        assert_eq!(
            verdict(&spawn, &data(Sysno::clone, [fork_flags, 0, 0, 0, 0, 0])),
            ALLOW
        );
        assert_eq!(verdict(&spawn, &data(Sysno::execve, [0; 6])), ALLOW);
        assert_eq!(
            verdict(
                &spawn,
                &data(
                    Sysno::clone,
                    [fork_flags | libc::CLONE_NEWPID as u64, 0, 0, 0, 0, 0]
                )
            ),
            SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn sockets_only_with_net_connect() {
        let none = programs(SyscallGrants::default());
        let net = programs(SyscallGrants {
            spawn: false,
            net: true,
        });
        for sysno in [Sysno::socket, Sysno::connect] {
            assert_eq!(verdict(&none, &data(sysno, [0; 6])), SECCOMP_RET_USER_NOTIF);
            assert_eq!(verdict(&net, &data(sysno, [0; 6])), ALLOW);
        }
        // The IPC channel works either way.
        assert_eq!(verdict(&none, &data(Sysno::recvmsg, [0; 6])), ALLOW);
    }

    #[test]
    fn ioctl_is_compared_on_the_low_32_bits() {
        let p = programs(SyscallGrants::default());
        let tcgets = libc::TCGETS;
        assert_eq!(
            verdict(&p, &data(Sysno::ioctl, [1, tcgets, 0, 0, 0, 0])),
            ALLOW
        );
        // Garbage in the upper half: the kernel truncates to `unsigned int`, so do we.
        assert_eq!(
            verdict(
                &p,
                &data(Sysno::ioctl, [1, tcgets | 0xdead_0000_0000, 0, 0, 0, 0])
            ),
            ALLOW
        );
        // TIOCSTI (push input into a terminal) is not on the list.
        assert_eq!(
            verdict(&p, &data(Sysno::ioctl, [0, libc::TIOCSTI, 0, 0, 0, 0])),
            SECCOMP_RET_USER_NOTIF
        );
    }

    #[test]
    fn prctl_and_prlimit_only_harmless_forms() {
        let p = programs(SyscallGrants::default());
        let prctl = |option: i32| data(Sysno::prctl, [option as u64, 0, 0, 0, 0, 0]);
        assert_eq!(verdict(&p, &prctl(libc::PR_SET_NAME)), ALLOW);
        assert_eq!(
            verdict(&p, &prctl(libc::PR_SET_SECCOMP)),
            SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(
            verdict(&p, &prctl(libc::PR_SET_DUMPABLE)),
            SECCOMP_RET_USER_NOTIF
        );
        let read = data(
            Sysno::prlimit64,
            [0, libc::RLIMIT_NOFILE as u64, 0, 0x1000, 0, 0],
        );
        assert_eq!(verdict(&p, &read), ALLOW);
        let raise = data(
            Sysno::prlimit64,
            [0, libc::RLIMIT_NOFILE as u64, 0x1000, 0, 0, 0],
        );
        assert_eq!(verdict(&p, &raise), SECCOMP_RET_USER_NOTIF);
    }

    #[test]
    fn foreign_architecture_is_killed_and_x32_is_reported() {
        let p = programs(SyscallGrants::default());
        let mut i386 = data(Sysno::read, [0; 6]);
        i386.arch = 0x4000_0003; // AUDIT_ARCH_I386
        assert_eq!(verdict(&p, &i386), libc::SECCOMP_RET_KILL_PROCESS);
        let x32_read = Data {
            nr: (Sysno::read.id() as u32 | X32_SYSCALL_BIT) as i32,
            arch: AUDIT_ARCH_X86_64,
            args: [0; 6],
        };
        assert_eq!(verdict(&p, &x32_read), SECCOMP_RET_USER_NOTIF);
        assert_eq!(syscall_name(x32_read.nr), "x32 read");
    }

    #[test]
    fn syscall_names_come_from_the_number() {
        assert_eq!(syscall_name(Sysno::ptrace.id()), "ptrace");
        assert_eq!(syscall_name(Sysno::clone.id()), "clone");
        assert_eq!(syscall_name(100_000), "syscall 100000");
        assert_eq!(syscall_name(-1), "syscall -1");
    }
}

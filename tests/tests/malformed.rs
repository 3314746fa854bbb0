//! Malformed ELF input (SPEC §14): hundreds of broken files derived from a real example plugin,
//! each inspected under a counting allocator and a watchdog. Every one must end in a clean,
//! coded error (or, for a harmless change, a report): no panic, no hang, and no allocation
//! beyond a small multiple of the file's size.
//!
//! The variants are deterministic (a fixed-seed generator): truncations at every structure
//! boundary and at spread-out lengths, bad header offsets and counts, flipped class, byte
//! order, machine and type, zero and wrong entry sizes, section headers pointing past the end,
//! bogus name and string offsets, broken program headers and dynamic entries, extended section
//! numbering, and random byte flips in the tables.
//!
//! `harness = false`: a global allocator counts this process's bytes, so no other test may
//! run beside it. Run with `cargo test -p integration-tests --test malformed`.

use host_loader::elf::header::Header;
use host_loader::elf::sections::{SHT_DYNSYM, SectionTable};
use host_loader::elf::segments::{PT_DYNAMIC, Segments};
use host_loader::inspect::exercise;
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live bytes and the peak since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counters are plain atomics and never affect what is returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout, which it guarantees is valid.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through `alloc`/`realloc` above) with
        // `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A variant may allocate at most this multiple of its size (plus a small constant for
/// messages and the report).
const ALLOCATION_FACTOR: usize = 3;
const ALLOCATION_SLACK: usize = 256 * 1024;
/// A variant taking longer than this is a hang: the watchdog aborts the run naming it.
const HANG: Duration = Duration::from_secs(20);

/// Every code a malformed file may end with.
const CODES: &[&str] = &[
    "ELF_NOT_ELF",
    "ELF_WRONG_TARGET",
    "ELF_NOT_SHARED_OBJECT",
    "ELF_TRUNCATED",
    "ELF_BAD_IDENT",
    "ELF_BAD_ENTSIZE",
    "ELF_BAD_COUNT",
    "ELF_BAD_STRING",
    "ELF_BAD_ADDRESS",
    "ELF_BAD_INDEX",
    "ELF_MALFORMED",
    "NOT_A_PLUGIN",
    "MANIFEST_CORRUPT",
    "MANIFEST_INVALID",
];

/// A fixed-seed xorshift generator: the same variants on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One malformed file and what it must give.
struct Variant {
    name: String,
    bytes: Vec<u8>,
    /// `Some(codes)`: must fail with one of these; `None`: any clean outcome.
    expect: Option<&'static [&'static str]>,
}

fn put(bytes: &mut [u8], at: u64, value: &[u8]) {
    let at = at as usize;
    if let Some(slot) = bytes.get_mut(at..at + value.len()) {
        slot.copy_from_slice(value);
    }
}

fn base_plugin() -> Vec<u8> {
    let so = integration_tests::plugin("word-stats");
    // Debug info is most of the file and none of the structure: strip it (when `strip` is
    // there) so each variant's inspection is quick.
    let stripped = std::env::temp_dir().join(format!("malformed-base-{}.so", std::process::id()));
    let ok = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&stripped)
        .arg(&so)
        .status()
        .is_ok_and(|s| s.success());
    let bytes = std::fs::read(if ok { &stripped } else { &so }).unwrap();
    let _ = std::fs::remove_file(&stripped);
    bytes
}

fn variants(base: &[u8]) -> Vec<Variant> {
    let header = Header::parse(base).unwrap();
    let sections = SectionTable::parse(&header, base).unwrap();
    let segments = Segments::parse(&header, base).unwrap();
    let len = base.len() as u64;
    let mut out = Vec::new();
    let mut add = |name: String, bytes: Vec<u8>, expect: Option<&'static [&'static str]>| {
        out.push(Variant {
            name,
            bytes,
            expect,
        })
    };
    let with = |at: u64, value: &[u8]| {
        let mut bytes = base.to_vec();
        put(&mut bytes, at, value);
        bytes
    };
    const TRUNCATED: &[&str] = &["ELF_TRUNCATED", "ELF_NOT_ELF"];

    // Truncations: inside the header (always truncated), at every section and segment
    // boundary, at the tables' ends, and at 120 spread-out lengths.
    for cut in [0u64, 3, 4, 5, 6, 16, 20, 40, 52, 63] {
        add(
            format!("truncated to {cut} bytes"),
            base[..cut as usize].to_vec(),
            Some(TRUNCATED),
        );
    }
    let mut cuts: Vec<u64> = Vec::new();
    for s in sections.iter() {
        cuts.extend([s.offset, s.offset + s.size / 2, s.offset + s.size]);
    }
    for p in segments.iter() {
        cuts.extend([p.offset, p.offset + p.filesz / 2]);
    }
    cuts.extend((1..=120).map(|i| len * i / 121));
    cuts.extend([header.shoff, header.shoff + 1, len - 1]);
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts.into_iter().filter(|c| *c >= 64 && *c < len) {
        add(
            format!("truncated to {cut} bytes"),
            base[..cut as usize].to_vec(),
            None,
        );
    }

    // Header: identification, type and machine.
    for (at, value, expect) in [
        (4u64, 1u8, &["ELF_WRONG_TARGET"][..]),
        (4, 0, &["ELF_BAD_IDENT"]),
        (4, 3, &["ELF_BAD_IDENT"]),
        (5, 2, &["ELF_WRONG_TARGET"]),
        (5, 0, &["ELF_BAD_IDENT"]),
        (5, 9, &["ELF_BAD_IDENT"]),
    ] {
        add(
            format!("ident byte {at} = {value}"),
            with(at, &[value]),
            Some(expect),
        );
    }
    for machine in [0u16, 3, 40, 183, 243, 0xffff] {
        if machine != header.machine {
            add(
                format!("machine {machine}"),
                with(18, &machine.to_le_bytes()),
                Some(&["ELF_WRONG_TARGET"]),
            );
        }
    }
    for kind in [0u16, 1, 2, 4, 0xfe00] {
        add(
            format!("e_type {kind}"),
            with(16, &kind.to_le_bytes()),
            Some(&["ELF_NOT_SHARED_OBJECT"]),
        );
    }
    // Header: offsets and counts.
    for value in [
        1u64,
        len - 1,
        len,
        len + 1,
        u64::MAX,
        u64::from(u32::MAX),
        0x40,
    ] {
        add(
            format!("e_shoff {value:#x}"),
            with(40, &value.to_le_bytes()),
            None,
        );
        add(
            format!("e_phoff {value:#x}"),
            with(32, &value.to_le_bytes()),
            None,
        );
    }
    for value in [0u16, 1, 2, 0xff00, 0xffff] {
        add(
            format!("e_shnum {value}"),
            with(60, &value.to_le_bytes()),
            None,
        );
        add(
            format!("e_phnum {value}"),
            with(56, &value.to_le_bytes()),
            None,
        );
        add(
            format!("e_shstrndx {value}"),
            with(62, &value.to_le_bytes()),
            None,
        );
    }
    for value in [0u16, 1, 39, 63, 65, 0xffff] {
        add(
            format!("e_shentsize {value}"),
            with(58, &value.to_le_bytes()),
            Some(&["ELF_BAD_ENTSIZE", "ELF_TRUNCATED", "ELF_BAD_COUNT"]),
        );
        add(
            format!("e_phentsize {value}"),
            with(54, &value.to_le_bytes()),
            None,
        );
    }
    // Extended numbering with a huge count in section 0.
    for count in [u64::MAX, u64::from(u32::MAX), len] {
        let mut bytes = with(60, &0u16.to_le_bytes());
        put(&mut bytes, header.shoff + 32, &count.to_le_bytes());
        add(
            format!("e_shnum 0, section 0 sh_size {count:#x}"),
            bytes,
            Some(&["ELF_BAD_COUNT", "ELF_TRUNCATED"]),
        );
    }
    let mut bytes = with(62, &0xffffu16.to_le_bytes());
    put(&mut bytes, header.shoff + 40, &u32::MAX.to_le_bytes());
    add(
        "e_shstrndx SHN_XINDEX, section 0 sh_link bogus".into(),
        bytes,
        Some(&["ELF_BAD_INDEX"]),
    );

    // Every section header: offsets, sizes, entry sizes, names, links.
    let shentsize = u64::from(header.shentsize);
    for (index, section) in sections.iter().enumerate().skip(1) {
        let at = header.shoff + index as u64 * shentsize;
        let mut field = |name: &str, offset: u64, value: &[u8]| {
            add(
                format!("section {index} {name}"),
                with(at + offset, value),
                None,
            )
        };
        field("sh_name = u32::MAX", 0, &u32::MAX.to_le_bytes());
        field("sh_name = 1 << 20", 0, &(1u32 << 20).to_le_bytes());
        field("sh_offset = file length", 24, &len.to_le_bytes());
        field("sh_offset = u64::MAX", 24, &u64::MAX.to_le_bytes());
        field("sh_size = u64::MAX", 32, &u64::MAX.to_le_bytes());
        field("sh_size = file length + 1", 32, &(len + 1).to_le_bytes());
        field("sh_link = u32::MAX", 40, &u32::MAX.to_le_bytes());
        field("sh_entsize = 0", 56, &0u64.to_le_bytes());
        field("sh_entsize = 7", 56, &7u64.to_le_bytes());
        if section.kind == SHT_DYNSYM {
            add(
                format!("section {index} (.dynsym) sh_entsize = 0"),
                with(at + 56, &0u64.to_le_bytes()),
                Some(&["ELF_BAD_ENTSIZE"]),
            );
        }
    }
    // Program headers.
    let phentsize = u64::from(header.phentsize);
    for index in 0..segments.iter().count() as u64 {
        let at = header.phoff + index * phentsize;
        for (name, offset, value) in [
            ("p_offset = u64::MAX", 8u64, u64::MAX),
            ("p_offset = file length", 8, len),
            ("p_vaddr = 0x7fff0000", 16, 0x7fff_0000),
            ("p_filesz = u64::MAX", 32, u64::MAX),
        ] {
            add(
                format!("segment {index} {name}"),
                with(at + offset, &value.to_le_bytes()),
                None,
            );
        }
        add(
            format!("segment {index} flags RWX"),
            with(at + 4, &7u32.to_le_bytes()),
            None,
        );
    }
    // Dynamic entries: bogus values (string offsets, addresses, sizes) and tags.
    if let Some(dynamic) = segments.iter().find(|p| p.kind == PT_DYNAMIC) {
        for entry in 0..dynamic.filesz / 16 {
            let at = dynamic.offset + entry * 16;
            add(
                format!("dynamic entry {entry} d_val = u64::MAX"),
                with(at + 8, &u64::MAX.to_le_bytes()),
                None,
            );
            add(
                format!("dynamic entry {entry} d_val = 0x12345678"),
                with(at + 8, &0x1234_5678u64.to_le_bytes()),
                None,
            );
            let mut bytes = with(at, &1u64.to_le_bytes());
            put(&mut bytes, at + 8, &0xffff_fff0u64.to_le_bytes());
            add(
                format!("dynamic entry {entry} = DT_NEEDED with a bogus string offset"),
                bytes,
                None,
            );
        }
    }
    // Dynamic symbols: bogus names and extended section indices.
    if let Some((_, dynsym)) = sections.by_kind(SHT_DYNSYM) {
        let count = dynsym.size / 24;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..40 {
            let symbol = rng.below(count);
            let at = dynsym.offset + symbol * 24;
            add(
                format!("dynamic symbol {symbol} st_name = u32::MAX"),
                with(at, &u32::MAX.to_le_bytes()),
                None,
            );
            add(
                format!("dynamic symbol {symbol} st_shndx = SHN_XINDEX"),
                with(at + 6, &0xffffu16.to_le_bytes()),
                None,
            );
        }
    }
    // Random byte flips in the structures (header, program headers, section headers).
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let regions = [
        (0u64, 64u64),
        (header.phoff, phentsize * segments.iter().count() as u64),
        (header.shoff, shentsize * sections.len() as u64),
    ];
    for round in 0..200 {
        let mut bytes = base.to_vec();
        let flips = 1 + rng.below(8);
        for _ in 0..flips {
            let (start, size) = regions[rng.below(regions.len() as u64) as usize];
            let at = (start + rng.below(size)) as usize;
            if let Some(byte) = bytes.get_mut(at) {
                *byte ^= 1 << rng.below(8);
            }
        }
        add(format!("random flips, round {round}"), bytes, None);
    }
    out
}

fn fingerprint(bytes: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

fn main() {
    let base = base_plugin();
    exercise(&base).expect("the unmodified plugin inspects cleanly");
    let mut seen = HashSet::new();
    let variants: Vec<Variant> = variants(&base)
        .into_iter()
        .filter(|v| seen.insert(fingerprint(&v.bytes)))
        .collect();

    // The watchdog: the current variant's number and start, checked from another thread.
    static CURRENT: AtomicU64 = AtomicU64::new(u64::MAX);
    static STARTED_MS: AtomicU64 = AtomicU64::new(0);
    let epoch = Instant::now();
    let names: Vec<String> = variants.iter().map(|v| v.name.clone()).collect();
    std::thread::spawn(move || {
        loop {
            std::thread::park_timeout(Duration::from_millis(500));
            let current = CURRENT.load(Ordering::Relaxed);
            let started = Duration::from_millis(STARTED_MS.load(Ordering::Relaxed));
            if current != u64::MAX && epoch.elapsed().saturating_sub(started) > HANG {
                eprintln!(
                    "malformed: HANG: variant {current} ({}) ran for more than {HANG:?}",
                    names[current as usize]
                );
                std::process::abort();
            }
        }
    });

    let mut failures = Vec::new();
    let mut by_code: std::collections::BTreeMap<String, usize> = Default::default();
    let mut slowest = (Duration::ZERO, String::new());
    let mut worst_ratio = 0f64;
    // Panics are caught and counted, not printed one by one.
    std::panic::set_hook(Box::new(|_| {}));
    for (index, variant) in variants.iter().enumerate() {
        STARTED_MS.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        CURRENT.store(index as u64, Ordering::Relaxed);
        let baseline = LIVE.load(Ordering::Relaxed);
        PEAK.store(baseline, Ordering::Relaxed);
        let start = Instant::now();
        let outcome = std::panic::catch_unwind(|| exercise(&variant.bytes));
        let elapsed = start.elapsed();
        let extra = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
        CURRENT.store(u64::MAX, Ordering::Relaxed);
        if elapsed > slowest.0 {
            slowest = (elapsed, variant.name.clone());
        }
        if variant.bytes.len() >= ALLOCATION_SLACK {
            worst_ratio = worst_ratio.max(extra as f64 / variant.bytes.len() as f64);
        }
        let limit = ALLOCATION_FACTOR * variant.bytes.len() + ALLOCATION_SLACK;
        if extra > limit {
            failures.push(format!(
                "{}: allocated {extra} bytes for a {}-byte file (limit {limit})",
                variant.name,
                variant.bytes.len()
            ));
        }
        let code = match outcome {
            Err(_) => {
                failures.push(format!("{}: PANICKED", variant.name));
                continue;
            }
            Ok(Ok(())) => "ok",
            Ok(Err(error)) => {
                let code = error.code();
                if !CODES.contains(&code) || error.to_string().trim().is_empty() {
                    failures.push(format!(
                        "{}: unexpected code {code} or empty message: {error}",
                        variant.name
                    ));
                }
                code
            }
        };
        if let Some(expected) = variant.expect
            && !expected.contains(&code)
        {
            failures.push(format!(
                "{}: ended {code}, expected one of {expected:?}",
                variant.name
            ));
        }
        *by_code.entry(code.to_string()).or_default() += 1;
    }
    let _ = std::panic::take_hook();
    eprintln!(
        "malformed: {} distinct variants of a {}-byte plugin; outcomes {by_code:?}; slowest {:?} ({}); peak allocation {worst_ratio:.2}x the file size (files over 256 KiB)",
        variants.len(),
        base.len(),
        slowest.0,
        slowest.1
    );
    let enough = variants.len() >= 500;
    if !enough {
        failures.push(format!(
            "only {} distinct variants (at least 500 expected)",
            variants.len()
        ));
    }
    for failure in &failures {
        eprintln!("malformed: FAILED {failure}");
    }
    println!(
        "malformed: {} passed, {} failed",
        variants.len().saturating_sub(failures.len()),
        failures.len()
    );
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

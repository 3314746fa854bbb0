//! A fuzzing loop for the stable toolchain: the same target as `fuzz_targets/inspect_elf.rs`
//! (`host_loader::inspect::exercise`) on inputs mutated from real shared objects, for a
//! bounded time. Not coverage-guided (that needs libFuzzer's instrumentation); it mutates the
//! structures that matter (header, program and section headers, dynamic section) more often
//! than the rest.
//!
//! Usage: `stable [SECONDS] [SEED_FILE...]` (default 30 s; seeds default to the example
//! plugins in `../../target/debug` and a few system libraries). Exits 1 on a panic, after
//! saving the input to `artifacts/stable/crash-<hash>`.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
}

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    7,
    0x7f,
    0xff,
    0xffff,
    0x1_0000,
    0xffff_ffff,
    0x8000_0000,
    u64::MAX,
    u64::MAX - 1,
];

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        if data.is_empty() {
            break;
        }
        // Half the time, hit the first 4 KiB (headers and, in small files, the tables).
        let span = if rng.below(2) == 0 {
            data.len().min(4096)
        } else {
            data.len()
        };
        let at = rng.below(span);
        match rng.below(5) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = rng.next() as u8,
            2 => {
                let value = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                let width = [1, 2, 4, 8][rng.below(4)];
                let end = (at + width).min(data.len());
                data[at..end].copy_from_slice(&value[..end - at]);
            }
            3 => data.truncate(at.max(1)),
            _ => {
                let from = rng.below(data.len());
                let len = rng.below(64).min(data.len() - from).min(data.len() - at);
                let chunk = data[from..from + len].to_vec();
                data[at..at + len].copy_from_slice(&chunk);
            }
        }
    }
    data
}

fn default_seeds() -> Vec<PathBuf> {
    let mut seeds: Vec<PathBuf> = std::fs::read_dir("../../target/debug")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "so"))
        .collect();
    for lib in ["libz.so.1", "libm.so.6", "libgcc_s.so.1"] {
        seeds.push(PathBuf::from("/usr/lib/x86_64-linux-gnu").join(lib));
    }
    seeds
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(30);
    let mut paths: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if paths.is_empty() {
        paths = default_seeds();
    }
    let seeds: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    assert!(!seeds.is_empty(), "no seed file could be read: {paths:?}");
    eprintln!(
        "stable fuzzer: {} seeds, {seconds} s",
        seeds.len()
    );
    std::panic::set_hook(Box::new(|_| {}));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ u64::from(std::process::id()));
    let (mut runs, mut errors) = (0u64, 0u64);
    let mut slowest = Duration::ZERO;
    while Instant::now() < deadline {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(seed, &mut rng);
        let start = Instant::now();
        let outcome = std::panic::catch_unwind(|| host_loader::inspect::exercise(&input));
        slowest = slowest.max(start.elapsed());
        runs += 1;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(_)) => errors += 1,
            Err(_) => {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                input.hash(&mut hasher);
                let dir = PathBuf::from("artifacts/stable");
                let _ = std::fs::create_dir_all(&dir);
                let file = dir.join(format!("crash-{:016x}", hasher.finish()));
                let _ = std::fs::write(&file, &input);
                eprintln!("stable fuzzer: PANIC after {runs} runs; input saved to {}", file.display());
                std::process::exit(1);
            }
        }
    }
    eprintln!(
        "stable fuzzer: {runs} runs ({errors} clean errors), no panic; slowest input {slowest:?}"
    );
}

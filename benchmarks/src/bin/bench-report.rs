//! `bench-report`: every benchmark beside its floor, from criterion's results of the last run.
//!
//! For each row of [`COMPARISONS`] it reads `<criterion>/<group>/<bench>/new/estimates.json`
//! (mean and median point estimates, in ns) for the figure and its floor, and prints a
//! Markdown table: both means, their ratio (means, and medians), the target ratio and whether
//! it was met. A missing result shows as "not run". It reports; it never fails on a missed
//! target.
//!
//! ```text
//! cargo run -p benchmarks --bin bench-report [-- --markdown-out FILE] [--criterion-dir DIR]
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A criterion benchmark: group and function name.
#[derive(Debug, Clone, Copy)]
struct Bench {
    group: &'static str,
    name: &'static str,
}

/// What throughput to show beside a comparison.
#[derive(Debug, Clone, Copy)]
enum Rate {
    None,
    /// Elements per second, from the group's `Throughput::Elements`, named by this unit.
    Elements(&'static str),
    /// Files/s and MB/s, from the `corpus.json` the inspection bench writes in its group.
    Corpus,
}

/// One row: a figure, its floor, and the largest acceptable ratio (`None`: report only).
#[derive(Debug)]
struct Comparison {
    what: &'static str,
    measured: Bench,
    floor: Bench,
    target: Option<f64>,
    rate: Rate,
}

const fn row(
    what: &'static str,
    (group, name): (&'static str, &'static str),
    (floor_group, floor_name): (&'static str, &'static str),
    target: Option<f64>,
    rate: Rate,
) -> Comparison {
    Comparison {
        what,
        measured: Bench { group, name },
        floor: Bench {
            group: floor_group,
            name: floor_name,
        },
        target,
        rate,
    }
}

/// Every comparison of SPEC §13: one line each.
#[rustfmt::skip]
const COMPARISONS: &[Comparison] = &[
    row("warm call", ("warm_call", "sandboxed_warm_call"), ("warm_call", "raw_socketpair_round_trip"), Some(1.5), Rate::None),
    row("warm call, word-stats `analyze`", ("warm_call", "sandboxed_warm_call_word_stats"), ("warm_call", "raw_socketpair_round_trip"), None, Rate::None),
    row("cold start", ("cold_start", "sandboxed_cold_start"), ("cold_start", "bare_fork_dlopen_call"), Some(1.5), Rate::None),
    row("exec per worker instead of the launcher", ("layer_cost", "exec_per_worker"), ("layer_cost", "all_layers"), None, Rate::None),
    row("seccomp's cost at cold start", ("layer_cost", "all_layers"), ("layer_cost", "without_seccomp"), None, Rate::None),
    row("Landlock's cost at cold start", ("layer_cost", "all_layers"), ("layer_cost", "without_landlock"), None, Rate::None),
    row("namespaces' cost at cold start", ("layer_cost", "all_layers"), ("layer_cost", "without_namespaces"), None, Rate::None),
    row("uid drop's cost at cold start", ("layer_cost", "all_layers"), ("layer_cost", "without_uid-drop"), None, Rate::None),
    row("the four layers' cost at cold start", ("layer_cost", "all_layers"), ("layer_cost", "without_all_four"), None, Rate::None),
    row("cold start, 2 GB host", ("cold_start_big_host", "host_2gb_resident"), ("cold_start_big_host", "empty_host"), Some(1.2), Rate::None),
    row("146 stories, streamed", ("stories_146", "sandboxed_warm"), ("stories_146", "in_process"), Some(1.5), Rate::Elements("stories")),
    row("146 stories, one call at a time", ("stories_146", "sandboxed_one_at_a_time"), ("stories_146", "in_process"), None, Rate::Elements("stories")),
    row("inspection", ("inspection", "inspect"), ("inspection", "read_and_hash"), None, Rate::Corpus),
    row("inspection, hardening and imports of every file", ("inspection", "full_analysis"), ("inspection", "read_and_hash"), None, Rate::Corpus),
];

/// Point estimates of one benchmark, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    mean: f64,
    median: f64,
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn bench_dir(dir: &Path, bench: Bench) -> PathBuf {
    dir.join(bench.group).join(bench.name).join("new")
}

fn estimate(dir: &Path, bench: Bench) -> Option<Estimate> {
    let json = read_json(&bench_dir(dir, bench).join("estimates.json"))?;
    let point = |key: &str| json.get(key)?.get("point_estimate")?.as_f64();
    Some(Estimate {
        mean: point("mean")?,
        median: point("median")?,
    })
}

/// `Throughput::Elements(n)` of a benchmark, from criterion's `benchmark.json`.
fn elements(dir: &Path, bench: Bench) -> Option<f64> {
    let json = read_json(&bench_dir(dir, bench).join("benchmark.json"))?;
    json.get("throughput")?.get("Elements")?.as_f64()
}

/// Files and bytes of the inspection corpus.
fn corpus(dir: &Path, group: &str) -> Option<(f64, f64)> {
    let json = read_json(&dir.join(group).join("corpus.json"))?;
    Some((json.get("files")?.as_f64()?, json.get("bytes")?.as_f64()?))
}

/// A duration in nanoseconds with a readable unit and three significant digits.
fn duration(ns: f64) -> String {
    let (value, unit) = match ns {
        ns if ns < 1e3 => (ns, "ns"),
        ns if ns < 1e6 => (ns / 1e3, "µs"),
        ns if ns < 1e9 => (ns / 1e6, "ms"),
        ns => (ns / 1e9, "s"),
    };
    let decimals = match value {
        v if v < 10.0 => 2,
        v if v < 100.0 => 1,
        _ => 0,
    };
    format!("{value:.decimals$} {unit}")
}

fn verdict(ratio: f64, target: Option<f64>) -> &'static str {
    match target {
        Some(target) if ratio <= target => "met",
        Some(_) => "missed",
        None => "no target",
    }
}

fn throughput(dir: &Path, c: &Comparison, measured: Estimate, floor: Estimate) -> String {
    let per_second = |count: f64, est: Estimate| count / (est.mean / 1e9);
    match c.rate {
        Rate::None => String::new(),
        Rate::Elements(unit) => match elements(dir, c.measured) {
            Some(n) => format!(
                "{:.0} {unit}/s (floor {:.0} {unit}/s)",
                per_second(n, measured),
                per_second(n, floor)
            ),
            None => "unknown".to_string(),
        },
        Rate::Corpus => match corpus(dir, c.measured.group) {
            Some((files, bytes)) => format!(
                "{:.0} files/s, {:.0} MB/s (floor {:.0} files/s, {:.0} MB/s)",
                per_second(files, measured),
                per_second(bytes / 1e6, measured),
                per_second(files, floor),
                per_second(bytes / 1e6, floor)
            ),
            None => "unknown (no corpus.json)".to_string(),
        },
    }
}

/// Target for the proportional set size of an idle warm worker, in KiB.
const IDLE_PSS_TARGET_KB: u64 = 4 * 1024;

/// The idle-worker line, from the `pss.json` the process bench writes.
fn idle_worker(dir: &Path) -> String {
    let json = read_json(&dir.join("idle_worker").join("pss.json"));
    let kb = |key: &str| json.as_ref()?.get(key)?.as_u64();
    match (kb("pss_kb"), kb("rss_kb")) {
        (Some(pss), Some(rss)) => format!(
            "Idle warm worker (word-stats, after one call): PSS {pss} KiB (RSS {rss} KiB); target ≤ {IDLE_PSS_TARGET_KB} KiB: {}\n",
            if pss <= IDLE_PSS_TARGET_KB {
                "met"
            } else {
                "missed"
            }
        ),
        _ => "Idle warm worker: not run\n".to_string(),
    }
}

/// The Markdown table for the results in `dir`, and the idle-worker line.
fn table(dir: &Path) -> String {
    let mut out = String::new();
    out.push_str("| comparison | benchmark | floor | mean | floor mean | ratio | median ratio | target | result | throughput |\n");
    out.push_str("|---|---|---|---:|---:|---:|---:|---:|---|---|\n");
    for c in COMPARISONS {
        let measured_id = format!("{}/{}", c.measured.group, c.measured.name);
        let floor_id = format!("{}/{}", c.floor.group, c.floor.name);
        let target = c.target.map_or("none".to_string(), |t| format!("≤ {t}"));
        let cells = match (estimate(dir, c.measured), estimate(dir, c.floor)) {
            (Some(m), Some(f)) => {
                let ratio = m.mean / f.mean;
                format!(
                    "{} | {} | {ratio:.2} | {:.2} | {target} | {} | {}",
                    duration(m.mean),
                    duration(f.mean),
                    m.median / f.median,
                    verdict(ratio, c.target),
                    throughput(dir, c, m, f),
                )
            }
            (m, f) => {
                let shown =
                    |e: Option<Estimate>| e.map_or("not run".to_string(), |e| duration(e.mean));
                format!(
                    "{} | {} | – | – | {target} | not run | ",
                    shown(m),
                    shown(f)
                )
            }
        };
        let _ = writeln!(
            out,
            "| {} | `{measured_id}` | `{floor_id}` | {cells} |",
            c.what
        );
    }
    out.push('\n');
    out.push_str(&idle_worker(dir));
    out
}

const USAGE: &str = "usage: bench-report [--markdown-out FILE] [--criterion-dir DIR]";

fn main() -> ExitCode {
    let mut markdown_out = None;
    let mut dir = benchmarks::criterion_dir();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some(flag @ ("--markdown-out" | "--criterion-dir")) => {
                let Some(value) = args.next() else {
                    eprintln!("{flag} needs a value\n{USAGE}");
                    return ExitCode::from(2);
                };
                if flag == "--markdown-out" {
                    markdown_out = Some(PathBuf::from(value));
                } else {
                    dir = PathBuf::from(value);
                }
            }
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("unexpected argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let table = table(&dir);
    println!(
        "Results from {} (ratio = measured / floor)\n",
        dir.display()
    );
    print!("{table}");
    if let Some(file) = markdown_out {
        if let Err(e) = std::fs::write(&file, &table) {
            eprintln!("cannot write {}: {e}", file.display());
            return ExitCode::from(2);
        }
        eprintln!("wrote {}", file.display());
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_a_unit_and_three_digits() {
        assert_eq!(duration(512.0), "512 ns");
        assert_eq!(duration(12_345.0), "12.3 µs");
        assert_eq!(duration(1_234_567.0), "1.23 ms");
        assert_eq!(duration(2.5e9), "2.50 s");
    }

    #[test]
    fn a_target_is_met_up_to_and_including_it() {
        assert_eq!(verdict(1.5, Some(1.5)), "met");
        assert_eq!(verdict(1.51, Some(1.5)), "missed");
        assert_eq!(verdict(9.0, None), "no target");
    }

    #[test]
    fn missing_results_are_not_run() {
        let table = table(Path::new("/nonexistent/criterion"));
        assert_eq!(table.lines().count(), 4 + COMPARISONS.len());
        assert!(table.ends_with("Idle warm worker: not run\n"));
        for line in table.lines().skip(2).take(COMPARISONS.len()) {
            assert!(line.contains("| not run | not run | – | – |"), "{line}");
            assert!(line.ends_with("| not run |  |"), "{line}");
        }
    }

    #[test]
    fn results_give_a_ratio_and_a_verdict() {
        let dir = std::env::temp_dir().join(format!("bench-report-test-{}", std::process::id()));
        let write = |bench: Bench, ns: f64| {
            let new = bench_dir(&dir, bench);
            std::fs::create_dir_all(&new).expect("mkdir");
            let estimate = serde_json::json!({
                "mean": {"point_estimate": ns},
                "median": {"point_estimate": ns},
            });
            std::fs::write(new.join("estimates.json"), estimate.to_string()).expect("write");
        };
        let warm = &COMPARISONS[0];
        write(warm.measured, 30_000.0);
        write(warm.floor, 10_000.0);
        let table = table(&dir);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        let line = table.lines().nth(2).expect("first row");
        assert!(
            line.contains("| 30.0 µs | 10.0 µs | 3.00 | 3.00 | ≤ 1.5 | missed |"),
            "{line}"
        );
    }
}

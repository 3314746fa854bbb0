//! The 146 stories through `word-stats` (SPEC §13): streamed through one warm sandboxed worker
//! (requests pipelined, as `run --jsonl` does) vs called in this process without isolation,
//! both decoding the output JSON. Also one call at a time through the warm worker, for
//! reference.

use benchmarks::{HOOK, InProcess, call_ok, open_plugin, plugin_path, start_worker, stories};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

fn stories_146(c: &mut Criterion) {
    let stories = stories();
    let path = plugin_path();
    let in_process = InProcess::open(&path);
    let plugin = open_plugin(&path);
    let mut worker = start_worker(&plugin);
    for (line, story) in stories.iter().enumerate() {
        assert_eq!(
            call_ok(&mut worker, story),
            in_process.call(story),
            "story line {}: sandboxed and in-process outputs differ",
            line + 1
        );
    }

    let mut group = c.benchmark_group("stories_146");
    group.throughput(Throughput::Elements(stories.len() as u64));
    group.bench_function("in_process", |b| {
        b.iter(|| {
            for story in &stories {
                black_box(in_process.call(black_box(story)));
            }
        });
    });
    let inputs: Vec<&[u8]> = stories.iter().map(Vec::as_slice).collect();
    group.bench_function("sandboxed_warm", |b| {
        b.iter(|| {
            let done = worker.call_many(HOOK, black_box(&inputs), 16, |_, result| {
                assert_eq!(result.status, host_loader::Outcome::Ok, "{result:?}");
                black_box(result);
            });
            assert_eq!(done, inputs.len());
        });
    });
    group.bench_function("sandboxed_one_at_a_time", |b| {
        b.iter(|| {
            for story in &stories {
                black_box(call_ok(&mut worker, black_box(story)));
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = stories_146
}
criterion_main!(benches);

//! libFuzzer target: arbitrary bytes through the ELF parser and static inspection. Any panic,
//! hang or runaway allocation is a bug; a clean error is the expected outcome.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = host_loader::inspect::exercise(data);
});

#[plugin_sdk::hook]
fn analyze(input: &mut Vec<u8>, extra: u32) -> *const u8 {
    let _ = (input, extra);
    std::ptr::null()
}

fn main() {}

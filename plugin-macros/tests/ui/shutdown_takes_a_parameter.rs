#[plugin_sdk::shutdown]
fn shutdown(reason: String) {
    let _ = reason;
}

fn main() {}

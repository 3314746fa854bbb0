#[plugin_sdk::init]
fn init(config: &str) {
    let _ = config;
}

fn main() {}

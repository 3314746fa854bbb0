#[plugin_sdk::init]
fn init() -> String {
    String::new()
}

fn main() {}

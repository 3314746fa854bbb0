#[plugin_sdk::init(name = "setup")]
fn init() {}

fn main() {}

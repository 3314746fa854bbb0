#[plugin_sdk::hook]
fn shutdown() {}

#[plugin_sdk::hook(name = "init")]
fn setup() {}

fn main() {}

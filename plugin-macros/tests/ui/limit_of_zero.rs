plugin_sdk::plugin! {
    name: "never-runs",
    description: "asks for no memory and no time",
    level: standard,
    permissions: [],
    limits: { memory_mb: 0, wall_ms: 0, file_ops: 0 },
}

fn main() {}

plugin_sdk::plugin! {
    name: "greedy-limits",
    description: "asks for more than its level allows",
    level: strict,
    permissions: [],
    limits: { memory_mb: 512, wall_ms: 1000 },
}

fn main() {}

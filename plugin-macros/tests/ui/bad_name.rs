plugin_sdk::plugin! {
    name: "Word_Stats",
    description: "a name that is not kebab-case",
    level: standard,
    permissions: [],
}

fn main() {}

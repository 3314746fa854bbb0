plugin_sdk::plugin! {
    name: "first",
    description: "the one declaration",
    level: standard,
    permissions: [],
}

mod again {
    plugin_sdk::plugin! {
        name: "second",
        description: "a second declaration in the same library",
        level: standard,
        permissions: [],
    }
}

fn main() {}

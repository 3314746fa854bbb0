plugin_sdk::plugin! {
    name: "bad-version",
    version: "1.0",
    description: "a version that is not semver",
    level: standard,
    permissions: [],
}

fn main() {}

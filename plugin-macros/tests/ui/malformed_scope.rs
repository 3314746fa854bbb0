plugin_sdk::plugin! {
    name: "bad-scope",
    description: "scopes that do not parse",
    level: standard,
    permissions: ["net.connect:feeds.example.org", "fs.read:../secrets"],
}

fn main() {}

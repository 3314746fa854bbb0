plugin_sdk::plugin! {
    name: "bad-permission",
    description: "asks for a permission that does not exist",
    level: standard,
    permissions: ["fs.delete:data"],
}

fn main() {}

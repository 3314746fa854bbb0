//! Links the plugin with an executable stack (`-z execstack`): the one thing this example
//! exists for. Static inspection must find `HARDEN_EXEC_STACK`.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,execstack");
}

//! The manifest must survive every build profile (SPEC §3): release with fat LTO, one codegen
//! unit and `--gc-sections`, including when `plugin!` and `#[hook]` are invoked in a dependency
//! crate rather than in the cdylib itself.

use host_loader::{Outcome, Plugin, Worker};
use integration_tests::{cargo, stories, target_dir, worker_options};

#[test]
fn manifest_survives_fat_lto_gc_sections_and_a_dependency_crate() {
    // A separate target dir: different RUSTFLAGS would otherwise invalidate the main build.
    let target = target_dir().join("profile-check");
    let status = cargo()
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "-C link-arg=-Wl,--gc-sections")
        .args([
            "build",
            "--quiet",
            "--profile",
            "release-lto",
            "-p",
            "word-stats",
            "-p",
            "story-hooks-plugin",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let story = serde_json::to_vec(&stories()[0]).unwrap();
    for (file, name, check) in [
        ("libword_stats.so", "word-stats", "words"),
        ("libstory_hooks_plugin.so", "story-hooks", "chars"),
    ] {
        let plugin = Plugin::open(target.join("release-lto").join(file)).unwrap();
        assert_eq!(plugin.manifest().info.name, name);
        let entry = plugin.report().entry_point("analyze").unwrap();
        assert!(entry.callable, "{file}: {entry:?}");
        let mut worker = Worker::start(&plugin, worker_options(&plugin)).unwrap();
        let result = worker.call("analyze", &story);
        assert_eq!(result.status, Outcome::Ok, "{file}: {result:?}");
        assert!(result.output.unwrap()[check].as_u64().unwrap() > 0);
    }
}

//! Hostile: asks the broker for what it was not granted. It holds `fs.read:data` and
//! `fs.write:out` (both inside its data dir) and tries, in one call:
//! `..` out of the data dir, a symbolic link the test planted in `data/` pointing outside, an
//! absolute path, the host's reserved store directory, a write outside `out/`, an environment
//! variable and an HTTP host it was not granted. Each must fail with `Denied` (and be recorded
//! as a violation); it returns what it got.
use hostile_common::Attempt;
use plugin_sdk::host::ErrorKind;
use plugin_sdk::{Story, hook, host, plugin};

plugin! {
    name: "hostile-path-escape",
    description: "Tries path escapes and ungranted hosts through the broker",
    author: "plugin-host examples",
    level: standard,
    permissions: ["fs.read:data", "fs.write:out"],
    limits: { wall_ms: 2000 },
}

/// One attempt: what the broker answered, as text.
type Request = Box<dyn Fn() -> Result<String, plugin_sdk::HostError>>;

/// The attempts, each a label and the request.
fn attempts() -> Vec<(&'static str, Request)> {
    vec![
        (
            "dotdot",
            Box::new(|| host().read_to_string("data/../secret.txt")),
        ),
        (
            "symlink",
            Box::new(|| host().read_to_string("data/link.txt")),
        ),
        (
            "absolute",
            Box::new(|| host().read_to_string("/etc/passwd")),
        ),
        (
            "reserved",
            Box::new(|| {
                host()
                    .read_file(".plugin-host/store.sqlite")
                    .map(|b| format!("{} bytes", b.len()))
            }),
        ),
        (
            "write-outside",
            Box::new(|| {
                host()
                    .write_file("data/planted.txt", "planted")
                    .map(|()| "written".into())
            }),
        ),
        (
            "env",
            Box::new(|| host().env("HOME").map(|v| format!("{v:?}"))),
        ),
        (
            "host",
            Box::new(|| {
                host()
                    .http_get("http://example.org/")
                    .map(|r| r.status.to_string())
            }),
        ),
    ]
}

/// Makes every attempt; escaped if any succeeded.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let _ = story;
    let mut details = Vec::new();
    let mut escaped = false;
    for (label, attempt) in attempts() {
        match attempt() {
            Ok(got) => {
                escaped = true;
                details.push(format!("{label}: GOT {got}"));
            }
            Err(e) => {
                // Refused, or nothing there (the symlink, where no test planted one): not an
                // escape. Anything else got further than it should.
                escaped |= !matches!(e.kind, ErrorKind::Denied | ErrorKind::NotFound);
                details.push(format!("{label}: {:?}: {}", e.kind, e.message));
            }
        }
    }
    let detail = details.join("\n");
    if escaped {
        Attempt::escaped(detail)
    } else {
        Attempt::stopped(detail)
    }
}

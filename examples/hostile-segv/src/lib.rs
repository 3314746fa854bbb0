//! Hostile: `analyze` writes through a null pointer. The worker dies of SIGSEGV; the call must
//! end `crashed` with the signal, and the host must carry on.
use plugin_sdk::{Story, hook, plugin};
use serde::Serialize;

/// What a hostile plugin reports if its attack ever returns: whether it escaped, and how.
#[derive(Debug, Serialize)]
pub struct Attempt {
    /// Whether the attack got through.
    pub escaped: bool,
    /// What happened.
    pub detail: String,
}

plugin! {
    name: "hostile-segv",
    description: "Writes through a null pointer in analyze",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
}

/// Crashes.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let target: *mut u8 = std::hint::black_box(std::ptr::null_mut());
    // SAFETY: none. Writing through a null pointer is the attack this plugin demonstrates.
    unsafe { std::ptr::write_volatile(target, story.title.len() as u8) };
    Attempt {
        escaped: true,
        detail: "wrote through a null pointer and survived".into(),
    }
}

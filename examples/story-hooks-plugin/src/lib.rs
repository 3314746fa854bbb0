//! Everything comes from `story-hooks`. The `extern crate` makes sure the dependency is linked
//! even though nothing here names its items: an unreferenced rlib would otherwise be left out,
//! and its exported manifest with it.
extern crate story_hooks;

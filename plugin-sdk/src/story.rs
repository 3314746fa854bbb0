//! The story record the platform's plugins work on (one line of `aesop-for-children.jsonl`).

use serde::{Deserialize, Serialize};

/// One story. `title` and `text` are required; the other fields are optional so that a plugin
/// can be called with a bare `{"title": ..., "text": ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Story {
    /// Identifier in the collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Title.
    pub title: String,
    /// The moral of the story.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lesson: Option<String>,
    /// Full text.
    pub text: String,
    /// Where it comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

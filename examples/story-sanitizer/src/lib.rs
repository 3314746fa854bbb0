//! Masks listed words in a story: each occurrence (whole word, any case) becomes asterisks of
//! the same length.
//!
//! The word list is its configuration (`init`), defaulting to a built-in list. The plugin also
//! asks for `fs.read:data/words.txt`, a file in its own data dir: reading it through the host's
//! broker is how it will get its list once the broker exists (issue 6); for the policy engine
//! this is the example of a narrow, low-risk grant that Standard allows.
use plugin_sdk::{Story, hook, init, plugin};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Mutex;

plugin! {
    name: "story-sanitizer",
    description: "Masks listed words in a story",
    author: "plugin-host examples",
    level: standard,
    permissions: ["fs.read:data/words.txt"],
    limits: { memory_mb: 64, wall_ms: 2000 },
}

/// Used when the configuration lists no words.
const DEFAULT_WORDS: &[&str] = &["wolf", "fox", "lion"];

/// The configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Words to mask (case-insensitive).
    #[serde(default)]
    pub words: Vec<String>,
}

/// The masked story.
#[derive(Debug, Serialize)]
pub struct Sanitized {
    /// The title, masked.
    pub title: String,
    /// The text, masked.
    pub text: String,
    /// How many words were masked.
    pub masked: usize,
}

static WORDS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Takes the word list from the configuration.
#[init]
pub fn init(config: Config) -> Result<(), String> {
    let words: HashSet<String> = if config.words.is_empty() {
        DEFAULT_WORDS.iter().map(|w| w.to_string()).collect()
    } else {
        config.words.iter().map(|w| w.to_lowercase()).collect()
    };
    if words
        .iter()
        .any(|w| w.is_empty() || !w.chars().all(char::is_alphanumeric))
    {
        return Err("each word to mask must be letters or digits only".into());
    }
    *WORDS.lock().map_err(|_| "word list lock poisoned")? = Some(words);
    Ok(())
}

/// Masks the listed words in the title and text.
#[hook]
pub fn analyze(story: Story) -> Result<Sanitized, String> {
    let guard = WORDS.lock().map_err(|_| "word list lock poisoned")?;
    let words = guard.as_ref().ok_or("init did not run")?;
    let (title, in_title) = mask(&story.title, words);
    let (text, in_text) = mask(&story.text, words);
    Ok(Sanitized {
        title,
        text,
        masked: in_title + in_text,
    })
}

/// Replaces every whole-word occurrence of a listed word with asterisks.
pub fn mask(text: &str, words: &HashSet<String>) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut count = 0;
    let mut word = String::new();
    let mut flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            if words.contains(&word.to_lowercase()) {
                out.extend(std::iter::repeat_n('*', word.chars().count()));
                count += 1;
            } else {
                out.push_str(word);
            }
            word.clear();
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    (out, count)
}

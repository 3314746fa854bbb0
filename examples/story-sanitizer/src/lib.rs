//! Masks listed words in a story: each occurrence (whole word, any case) becomes asterisks of
//! the same length.
//!
//! The word list comes from, in order: the configuration's `words` (`init`), else the file
//! `data/words.txt` in the plugin's data dir, read through the host's broker on the first call
//! of each worker (the plugin's only file access: `fs.read:data/words.txt`), else a built-in
//! list. Each result says where its list came from and how many file reads that call made, so
//! a test can compare it with the host's count.
use plugin_sdk::host::LogLevel;
use plugin_sdk::{Story, hook, host, init, plugin};
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

/// The word list file, relative to the data dir.
pub const WORDS_FILE: &str = "data/words.txt";

/// Used when neither the configuration nor the file lists words.
const DEFAULT_WORDS: &[&str] = &["wolf", "fox", "lion"];

/// The configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Words to mask (case-insensitive); when empty, the word list file is used.
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
    /// Where the word list came from: `config`, `file` or `default`.
    pub list: &'static str,
    /// File reads this call made through the host.
    pub file_reads: u64,
}

/// The list in use and where it came from; `None` until the first call decides.
static WORDS: Mutex<Option<(HashSet<String>, &'static str)>> = Mutex::new(None);

fn parse_words<'a>(words: impl Iterator<Item = &'a str>) -> Result<HashSet<String>, String> {
    let words: HashSet<String> = words
        .map(str::trim)
        .filter(|w| !w.is_empty() && !w.starts_with('#'))
        .map(str::to_lowercase)
        .collect();
    if words.iter().any(|w| !w.chars().all(char::is_alphanumeric)) {
        return Err("each word to mask must be letters or digits only".into());
    }
    Ok(words)
}

/// Takes the word list from the configuration, if it has one.
#[init]
pub fn init(config: Config) -> Result<(), String> {
    if !config.words.is_empty() {
        let words = parse_words(config.words.iter().map(String::as_str))?;
        *WORDS.lock().map_err(|_| "word list lock poisoned")? = Some((words, "config"));
    }
    Ok(())
}

/// Masks the listed words in the title and text.
#[hook]
pub fn analyze(story: Story) -> Result<Sanitized, String> {
    let mut guard = WORDS.lock().map_err(|_| "word list lock poisoned")?;
    let mut file_reads = 0;
    if guard.is_none() {
        file_reads += 1;
        let loaded = match host().read_to_string(WORDS_FILE) {
            Ok(text) => (parse_words(text.lines())?, "file"),
            Err(e) if e.kind == plugin_sdk::host::ErrorKind::NotFound => {
                host().log(
                    LogLevel::Warn,
                    format!("{WORDS_FILE} not found; masking the built-in list"),
                );
                (parse_words(DEFAULT_WORDS.iter().copied())?, "default")
            }
            Err(e) => return Err(format!("cannot read the word list: {e}")),
        };
        *guard = Some(loaded);
    }
    let (words, list) = guard.as_ref().ok_or("no word list")?;
    let (title, in_title) = mask(&story.title, words);
    let (text, in_text) = mask(&story.text, words);
    Ok(Sanitized {
        title,
        text,
        masked: in_title + in_text,
        list,
        file_reads,
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

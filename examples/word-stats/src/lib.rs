//! `word-stats`: counts the words, distinct words and sentences of a story, its mean word
//! length and its five most frequent longer words.
//!
//! Definitions (they are the contract the tests check):
//! - a word is a maximal run of alphabetic characters; an apostrophe `'` between two
//!   alphabetic characters joins them (`don't` is one word, `Frogs'` is the word `frogs`);
//!   words are compared lowercase;
//! - `sentences` is the number of maximal runs of `.`, `!`, `?`, plus one if a word follows the
//!   last such run;
//! - `avg_word_len` is the mean word length in characters, apostrophes included (0 without
//!   words);
//! - `top_words` is the 5 most frequent words of at least 4 characters, ties broken
//!   alphabetically.

use plugin_sdk::{Story, hook, plugin};
use serde::Serialize;
use std::collections::HashMap;

plugin! {
    name: "word-stats",
    description: "Counts words, sentences and the most frequent words of a story",
    author: "plugin-host examples",
    level: strict,
    permissions: [],
    limits: { memory_mb: 64, wall_ms: 2000 },
}

/// How often a word occurs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WordCount {
    /// The word, lowercase.
    pub word: String,
    /// Its number of occurrences.
    pub count: u64,
}

/// The statistics of one story.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WordStats {
    /// The story's title.
    pub title: String,
    /// Number of words.
    pub words: u64,
    /// Number of distinct lowercase words.
    pub unique_words: u64,
    /// Number of sentences.
    pub sentences: u64,
    /// Mean word length in characters.
    pub avg_word_len: f64,
    /// The five most frequent words of at least four characters.
    pub top_words: Vec<WordCount>,
}

/// The `analyze` hook.
#[hook]
pub fn analyze(story: Story) -> WordStats {
    stats(&story.title, &story.text)
}

/// Splits `text` into lowercase words by the definition above.
pub fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphabetic() {
            current.extend(c.to_lowercase());
        } else if c == '\''
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphabetic())
        {
            current.push('\'');
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Counts sentences by the definition above.
pub fn sentences(text: &str) -> u64 {
    let mut runs = 0;
    let mut in_run = false;
    let mut word_after_last_run = false;
    for c in text.chars() {
        if matches!(c, '.' | '!' | '?') {
            if !in_run {
                runs += 1;
            }
            in_run = true;
            word_after_last_run = false;
        } else {
            in_run = false;
            if c.is_alphabetic() {
                word_after_last_run = true;
            }
        }
    }
    runs + u64::from(word_after_last_run)
}

/// All statistics of one story.
pub fn stats(title: &str, text: &str) -> WordStats {
    let words = words(text);
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for word in &words {
        *counts.entry(word.as_str()).or_default() += 1;
    }
    let total_chars: usize = words.iter().map(|w| w.chars().count()).sum();
    let mut top: Vec<(&str, u64)> = counts
        .iter()
        .filter(|(w, _)| w.chars().count() >= 4)
        .map(|(w, c)| (*w, *c))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    WordStats {
        title: title.to_string(),
        words: words.len() as u64,
        unique_words: counts.len() as u64,
        sentences: sentences(text),
        avg_word_len: if words.is_empty() {
            0.0
        } else {
            total_chars as f64 / words.len() as f64
        },
        top_words: top
            .into_iter()
            .take(5)
            .map(|(word, count)| WordCount {
                word: word.to_string(),
                count,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apostrophes_join_only_between_letters() {
        assert_eq!(
            words("Don't stop the Frogs' song, 'tis 'x"),
            ["don't", "stop", "the", "frogs", "song", "tis", "x"]
        );
        assert_eq!(
            words("well-known 42 times—twice"),
            ["well", "known", "times", "twice"]
        );
    }

    #[test]
    fn sentence_runs() {
        assert_eq!(sentences(""), 0);
        assert_eq!(sentences("no terminator"), 1);
        assert_eq!(sentences("One. Two!? Three"), 3);
        assert_eq!(sentences("One... Two?!"), 2);
        assert_eq!(sentences("\"Quoted.\" "), 1);
    }

    #[test]
    fn statistics() {
        let s = stats("T", "The frog saw the frog. Frogs' frog? Jump, jump jump.");
        assert_eq!(s.words, 10);
        assert_eq!(s.unique_words, 5);
        assert_eq!(s.sentences, 3);
        assert_eq!(s.avg_word_len, 38.0 / 10.0);
        let top: Vec<_> = s
            .top_words
            .iter()
            .map(|w| (w.word.as_str(), w.count))
            .collect();
        assert_eq!(top, [("frog", 3), ("jump", 3), ("frogs", 1)]);
    }
}

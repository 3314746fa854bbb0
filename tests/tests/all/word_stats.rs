//! `word-stats` over the 146 real stories, in a sandboxed worker, checked against an
//! independent oracle written from the definitions (regular expressions, not the plugin's
//! character scanner).

use integration_tests::{binary, plugin, stories, stories_path};
use regex::Regex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Command;

/// The definitions of issue #2, as regular expressions.
fn oracle(title: &str, text: &str) -> Value {
    let word = Regex::new(r"\p{Alphabetic}+(?:'\p{Alphabetic}+)*").unwrap();
    let words: Vec<String> = word
        .find_iter(text)
        .map(|m| m.as_str().to_lowercase())
        .collect();
    let terminators = Regex::new(r"[.!?]+").unwrap();
    let runs: Vec<_> = terminators.find_iter(text).collect();
    let after_last = runs.last().map_or(text, |m| &text[m.end()..]);
    let sentences = runs.len() + usize::from(after_last.chars().any(char::is_alphabetic));
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for w in &words {
        *counts.entry(w).or_default() += 1;
    }
    let mut top: Vec<(&str, u64)> = counts
        .iter()
        .filter(|(w, _)| w.chars().count() >= 4)
        .map(|(w, c)| (*w, *c))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let chars: usize = words.iter().map(|w| w.chars().count()).sum();
    json!({
        "title": title,
        "words": words.len(),
        "unique_words": counts.len(),
        "sentences": sentences,
        "avg_word_len": if words.is_empty() { 0.0 } else { chars as f64 / words.len() as f64 },
        "top_words": top.iter().take(5).map(|(w, c)| json!({"word": w, "count": c})).collect::<Vec<_>>(),
    })
}

#[test]
fn all_146_stories_are_analysed_correctly_in_one_warm_worker() {
    let output = Command::new(binary("plugin-host"))
        .args(["run"])
        .arg(plugin("word-stats"))
        .args(["analyze", "--input"])
        .arg(stories_path())
        .args(["--jsonl", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stories = stories();
    assert_eq!(stories.len(), 146);
    assert_eq!(lines.len(), 146);
    for (result, story) in lines.iter().zip(&stories) {
        assert_eq!(result["status"], "ok", "{result}");
        let expected = oracle(
            story["title"].as_str().unwrap(),
            story["text"].as_str().unwrap(),
        );
        assert_eq!(result["output"], expected, "story {}", story["id"]);
        for field in [
            "cpu_ms",
            "wall_ms",
            "peak_rss_kb",
            "file_ops",
            "net_requests",
            "db_queries",
        ] {
            assert!(
                result["usage"][field].is_u64(),
                "usage.{field} missing in {result}"
            );
        }
        assert!(result["usage"]["peak_rss_kb"].as_u64().unwrap() > 0);
        assert_eq!(result["violations"], json!([]));
    }
}

#[test]
fn first_story_matches_hand_checked_counts() {
    // Counted by hand (and with Python) from story 1, "The Frogs and the Ox".
    let story = &stories()[0];
    let expected = oracle(
        story["title"].as_str().unwrap(),
        story["text"].as_str().unwrap(),
    );
    assert_eq!(expected["words"], 129);
    assert_eq!(expected["unique_words"], 76);
    assert_eq!(expected["sentences"], 12);
    assert_eq!(
        expected["top_words"][0],
        json!({"word": "frog", "count": 5})
    );
}

#[test]
fn oracle_follows_the_definitions_on_edge_cases() {
    let stats = oracle("t", "Don't! The Frogs' pond... no end");
    assert_eq!(stats["words"], 6);
    assert_eq!(stats["sentences"], 3);
    assert_eq!(oracle("t", "")["sentences"], 0);
}

//! Legitimate: counts the words of a story on eight threads. Threads are an ordinary thing for a
//! plugin to use, so even at Strict the sandbox must let it spawn and join them.
use plugin_sdk::{Story, hook, plugin};
use serde::Serialize;

plugin! {
    name: "threads-ok",
    description: "Counts the words of a story on eight threads",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 2000 },
}

/// How many threads counted, and the words they found in all.
#[derive(Debug, Serialize)]
pub struct Counted {
    /// Threads spawned (always 8).
    pub threads: usize,
    /// Whitespace-separated words in the story's text.
    pub words: usize,
}

const THREADS: usize = 8;

/// Cuts `text` into `THREADS` pieces, each cut at the start of a whitespace character, so that
/// no word is split between two pieces.
fn pieces(text: &str) -> Vec<&str> {
    let mut cuts = vec![0];
    for i in 1..THREADS {
        let mut at = (text.len() * i / THREADS).max(*cuts.last().unwrap_or(&0));
        while !text.is_char_boundary(at) {
            at += 1;
        }
        let cut = text[at..]
            .find(char::is_whitespace)
            .map_or(text.len(), |offset| at + offset);
        cuts.push(cut);
    }
    cuts.push(text.len());
    cuts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

/// Spawns eight threads, each counting the words of its share of the text, and adds them up.
#[hook]
pub fn analyze(story: Story) -> Counted {
    let words = std::thread::scope(|scope| {
        let handles: Vec<_> = pieces(&story.text)
            .into_iter()
            .map(|piece| scope.spawn(move || piece.split_whitespace().count()))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a counting thread panicked"))
            .sum()
    });
    Counted {
        threads: THREADS,
        words,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_count_every_word_once() {
        for text in [
            "",
            "one",
            "  lots   of  space  ",
            "a b c d e f g h i j k l m n o p q r s t u v w x y z",
            "the fox and the grapes — éé ü\u{3000}ü tab\tnew\nline",
        ] {
            let split = pieces(text);
            assert_eq!(split.len(), THREADS);
            assert_eq!(split.concat(), text);
            let total: usize = split.iter().map(|p| p.split_whitespace().count()).sum();
            assert_eq!(total, text.split_whitespace().count(), "{text:?}");
        }
    }
}

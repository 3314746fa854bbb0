//! Everything `plugin-host` prints on stdout goes through [`TerminalSafe`]: much of it was
//! written by a plugin (manifest fields, type names, symbol names, errors, outputs), and a
//! control character in it must not reach the operator's terminal as an escape sequence.

use std::io::{self, Write};

/// A writer that escapes every control character except newline and tab as `\uXXXX` (C0,
/// DEL and the C1 range, which some terminals also obey). JSON output passes unchanged: its
/// strings already escape C0 characters, and `\uXXXX` is also JSON's escape for the rest.
#[derive(Debug)]
pub(crate) struct TerminalSafe<W: Write>(pub W);

/// Standard output, made safe for a terminal.
pub(crate) fn stdout() -> TerminalSafe<io::StdoutLock<'static>> {
    TerminalSafe(io::stdout().lock())
}

fn needs_escape(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// `text` with the same escapes, for stderr: error messages quote file names and what a
/// plugin file says.
pub(crate) fn escaped(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        if needs_escape(c) {
            safe.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            safe.push(c);
        }
    }
    safe
}

impl<W: Write> Write for TerminalSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) if !text.chars().any(needs_escape) => self.0.write_all(buf)?,
            Ok(text) => self.0.write_all(escaped(text).as_bytes())?,
            // Not text (formatted output always is): escape the ASCII control bytes.
            Err(_) => {
                for &byte in buf {
                    if (byte < 0x20 && byte != b'\n' && byte != b'\t') || byte == 0x7f {
                        write!(self.0, "\\u{byte:04x}")?;
                    } else {
                        self.0.write_all(&[byte])?;
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        let mut out = TerminalSafe(Vec::new());
        writeln!(
            out,
            "built with \u{1b}[2J\u{1b}]0;owned\u{7}X, csi \u{9b}2J, tab\there"
        )
        .unwrap();
        let shown = String::from_utf8(out.0).unwrap();
        assert_eq!(
            shown,
            "built with \\u001b[2J\\u001b]0;owned\\u0007X, csi \\u009b2J, tab\there\n"
        );
        // JSON stays JSON, with the same meaning.
        let value = serde_json::json!({ "name": "a\u{1b}b\u{85}c\n" });
        let mut out = TerminalSafe(Vec::new());
        write!(out, "{value}").unwrap();
        let back: serde_json::Value = serde_json::from_slice(&out.0).unwrap();
        assert_eq!(back, value);
    }
}

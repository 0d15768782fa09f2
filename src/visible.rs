//! Text from the worker or a profile (output and log lines, paths, argv, env values, error messages, database
//! rows) made safe to show: a control character or an invisible formatting one would otherwise act on the
//! terminal (retitle it, clear it, move the cursor) or hide what a line says (a CR overwriting it, a bidi
//! override reversing it). Each becomes a visible escape; everything else is kept. The recorded events keep the
//! exact bytes (the JSON report has them); only what is shown is escaped.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` on one line, every control and invisible formatting character written as an escape (`\r`, `\n`,
/// `\u{1b}`, `\u{202e}`, as Rust's `{:?}` writes them); a tab becomes a space (it moves the cursor, but says nothing).
pub(crate) fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`visible`], but line breaks stay line breaks: for text meant to span lines (an error with context).
pub(crate) fn visible_lines(text: &str) -> String {
    text.split('\n').map(visible).collect::<Vec<_>>().join("\n")
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// Characters that change how the text around them is shown without showing themselves: bidi embeddings,
/// overrides and isolates, zero-width ones, line and paragraph separators, the byte-order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

fn push(out: &mut String, c: char) {
    match c {
        '\t' => out.push(' '),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_become_escapes() {
        assert_eq!(visible("\u{1b}]0;pwned\u{7}title"), "\\u{1b}]0;pwned\\u{7}title");
        assert_eq!(visible("\u{1b}[2J\u{1b}[31mred"), "\\u{1b}[2J\\u{1b}[31mred");
        assert_eq!(visible("ok\rfake"), "ok\\rfake");
        assert_eq!(visible("a\nb\tc"), "a\\nb c");
        assert_eq!(visible("\u{9b}31m \u{7f} \u{0}"), "\\u{9b}31m \\u{7f} \\u{0}");
        assert_eq!(visible("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(visible("\u{2066}x\u{2069}\u{200b}\u{feff}"), "\\u{2066}x\\u{2069}\\u{200b}\\u{feff}");
    }

    #[test]
    fn plain_text_is_kept_as_it_is() {
        let text = "listening on <sandbox>/data/w.sock — é 日本 \\u{1b}";
        assert!(matches!(visible(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = visible("\u{1b}[2J\r\u{202e}").into_owned();
        assert_eq!(visible(&once), once);
    }

    #[test]
    fn line_breaks_can_be_kept() {
        assert_eq!(visible_lines("first\u{1b}[2J\nsecond\r"), "first\\u{1b}[2J\nsecond\\r");
    }

    #[test]
    fn no_escaped_text_holds_a_control_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!visible(&all).chars().any(needs_escape));
    }
}

//! How facts are put for people: signals and errnos by name with their number, long lines clipped, minified
//! source named rather than quoted.

use std::borrow::Cow;

/// Longest line quoted whole; longer ones are clipped with "…".
pub const QUOTE_MAX: usize = 200;

/// `SIGPIPE (13)`; a number Linux has no name for stays a number (`signal 77`).
pub fn signal_label(signal: i32) -> String {
    match nix::sys::signal::Signal::try_from(signal) {
        Ok(s) => format!("{} ({signal})", s.as_str()),
        Err(_) => format!("signal {signal}"),
    }
}

/// `EACCES (13)` for an errno name; a name this system does not know is shown as it is.
pub fn errno_label(name: &str) -> String {
    // Errno names are fixed per platform and short: a scan of the numbers finds one faster than a table is read.
    (1..4096)
        .find(|&n| format!("{:?}", nix::errno::Errno::from_raw(n)) == name)
        .map_or_else(|| name.to_string(), |n| format!("{name} ({n})"))
}

/// A line of the worker's output as a report quotes it: whole when short, clipped at [`QUOTE_MAX`] characters with
/// "…", and named, not quoted, when it is minified source (a bundle's one line that a runtime prints above a syntax
/// error's caret).
pub fn quotable(line: &str) -> Cow<'_, str> {
    let chars = line.chars().count();
    if chars <= QUOTE_MAX {
        return Cow::Borrowed(line);
    }
    if is_minified(line) {
        return Cow::Owned(format!("<minified source, {chars} characters>"));
    }
    Cow::Owned(line.chars().take(QUOTE_MAX).collect::<String>() + "…")
}

/// A long line that is code packed without whitespace: few spaces, many of the punctuation marks code is made of.
fn is_minified(line: &str) -> bool {
    let chars = line.chars().count();
    let spaces = line.chars().filter(|c| c.is_whitespace()).count();
    let code = line.chars().filter(|c| matches!(c, ';' | '{' | '}' | '(' | ')' | ',' | '=' | '.')).count();
    chars > QUOTE_MAX && spaces * 12 < chars && code * 8 > chars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_errnos_are_named_with_their_number() {
        assert_eq!(signal_label(13), "SIGPIPE (13)");
        assert_eq!(signal_label(9), "SIGKILL (9)");
        assert_eq!(signal_label(77), "signal 77");
        assert_eq!(errno_label("EACCES"), "EACCES (13)");
        assert_eq!(errno_label("ENOTDIR"), "ENOTDIR (20)");
        assert_eq!(errno_label("EWHATEVER"), "EWHATEVER");
    }

    #[test]
    fn long_lines_are_clipped_and_minified_source_is_named() {
        assert_eq!(quotable("Error: short"), "Error: short");
        let prose = "word ".repeat(100);
        let clipped = quotable(&prose);
        assert_eq!(clipped.chars().count(), QUOTE_MAX + 1);
        assert!(clipped.ends_with('…'));
        let bundle = "var a=require(\"x\");function b(e){return e&&e.__esModule?e:{default:e}};".repeat(40);
        assert_eq!(quotable(&bundle), format!("<minified source, {} characters>", bundle.chars().count()));
        // A long stack line of a real program is prose with paths, not minified source.
        let stack =
            format!("    at Object.<anonymous> ({}/worker.js:12:5) and more words here", "/very/long/path".repeat(20));
        assert!(quotable(&stack).ends_with('…'));
    }
}

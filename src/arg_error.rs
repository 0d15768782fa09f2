//! A command line clap refused, shown whole as clap shows it (the error, the usage line, its tips, the allowed
//! values; styled only on a terminal), with the control characters of what it quotes escaped: an argument can
//! contain anything, and clap would write it to the terminal as it is.

use std::io::Write;

use clap::builder::Styles;
use clap::error::{ContextValue, Error};

use crate::error::EXIT_USAGE;
use crate::visible;

/// Prints `e` and exits: `--help` and `--version` on stdout with 0, a mistake on stderr with 2.
pub(crate) fn exit(mut e: Error, styles: &Styles) -> ! {
    if !e.use_stderr() {
        e.exit();
    }
    escape_quoted(&mut e);
    let text = escape_unstyled(&e.render().ansi().to_string(), &style_codes(styles));
    // anstream drops the styles where clap's own printing would: off a terminal, with NO_COLOR.
    let _ = anstream::stderr().write_all(text.as_bytes());
    std::process::exit(EXIT_USAGE);
}

/// Escapes the words clap quotes from the command line (the bad argument, the bad value) before they are styled,
/// so that none of them can pass for one of clap's styles.
fn escape_quoted(e: &mut Error) {
    let escaped: Vec<_> = e.context().filter_map(|(kind, value)| Some((kind, escaped(value)?))).collect();
    for (kind, value) in escaped {
        e.insert(kind, value);
    }
}

fn escaped(value: &ContextValue) -> Option<ContextValue> {
    let shown = |s: &String| visible::visible(s).into_owned();
    match value {
        ContextValue::String(s) => Some(ContextValue::String(shown(s))),
        ContextValue::Strings(all) => Some(ContextValue::Strings(all.iter().map(shown).collect())),
        _ => None,
    }
}

/// The escape sequences clap writes for `styles`, longest first (a style may begin with a shorter one).
fn style_codes(styles: &Styles) -> Vec<String> {
    let all = [
        styles.get_header(),
        styles.get_error(),
        styles.get_usage(),
        styles.get_literal(),
        styles.get_placeholder(),
        styles.get_valid(),
        styles.get_invalid(),
        styles.get_context(),
        styles.get_context_value(),
    ];
    let mut codes: Vec<String> =
        all.iter().flat_map(|s| [s.render().to_string(), s.render_reset().to_string()]).collect();
    codes.retain(|c| !c.is_empty());
    codes.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    codes.dedup();
    codes
}

/// `styled` with its control characters escaped as [`visible::visible_lines`] does, except the style sequences
/// in `codes`: what is left of a quoted argument in a tip or a value parser's message is shown, not obeyed.
fn escape_unstyled(styled: &str, codes: &[String]) -> String {
    let mut out = String::with_capacity(styled.len());
    let mut rest = styled;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&visible::visible_lines(&rest[..at]));
        rest = &rest[at..];
        let code = codes.iter().find(|c| rest.starts_with(c.as_str())).map_or("\x1b", String::as_str);
        match code {
            // An escape clap did not write: shown, and the rest of its sequence is text.
            "\x1b" => out.push_str(&visible::visible(code)),
            _ => out.push_str(code),
        }
        rest = &rest[code.len()..];
    }
    out.push_str(&visible::visible_lines(rest));
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    fn refused(args: &[&str]) -> Error {
        Cli::try_parse_from(std::iter::once(&"sockdiag").chain(args)).err().expect("clap refuses it")
    }

    #[test]
    fn clap_styles_are_kept_and_every_other_escape_is_shown() {
        let styles = Styles::default();
        let codes = style_codes(&styles);
        let literal = *styles.get_literal();
        assert!(codes.contains(&literal.render().to_string()), "{codes:?}");
        let styled = format!("{literal}--session{literal:#}\n\x1b]0;title\x07 \x1b[2J\r");
        let shown = escape_unstyled(&styled, &codes);
        assert_eq!(shown, format!("{literal}--session{literal:#}\n\\u{{1b}}]0;title\\u{{7}} \\u{{1b}}[2J\\r"));
    }

    #[test]
    fn quoted_arguments_are_escaped_even_where_they_match_a_style() {
        let bold = Styles::default().get_literal().render().to_string();
        let mut e = refused(&["run", "--session", "28", &format!("--profle{bold}\x1b]0;x\x07")]);
        escape_quoted(&mut e);
        let text = escape_unstyled(&e.render().ansi().to_string(), &style_codes(&Styles::default()));
        assert!(text.contains("--profle\\u{1b}[1m\\u{1b}]0;x\\u{7}"), "{text:?}");
        assert!(!text.contains(&format!("profle{bold}")), "{text:?}");
    }
}

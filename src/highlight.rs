//! Highlighted flx source for people: ANSI colours for the terminal (the REPL's
//! input line and `flx highlight`) and HTML (`flx highlight --html`). Both colour
//! the tokens of `syntax::lex`, the classes the editor grammars are tested against.

use crate::eval::builtins;
use crate::syntax::lex::{self, Class};

/// The tokens of `text`, builtins told apart by the interpreter's table.
pub fn tokens(text: &str) -> Vec<lex::Token> {
    lex::tokens(text, &|w| builtins::STATIC.lookup(w).is_some())
}

/// The SGR code of a class; plain names, operators and punctuation stay uncoloured.
fn ansi_style(class: Class) -> Option<&'static str> {
    Some(match class {
        Class::Comment => "90",
        Class::Keyword => "35",
        Class::Declaration => "1;35",
        Class::Definition => "1;34",
        Class::Constant | Class::Number => "36",
        Class::String => "32",
        Class::Escape | Class::Interpolation => "33",
        Class::Builtin => "34",
        Class::Geometry => "3;36",
        Class::Label => "3",
        Class::Invalid => "4;31",
        Class::Name | Class::Operator | Class::Punctuation => return None,
    })
}

/// `text` with ANSI colours by token class; the same display width as `text`.
pub fn ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut at = 0;
    for t in tokens(text) {
        out.push_str(&text[at..t.start]);
        let token = &text[t.start..t.end];
        match ansi_style(t.class) {
            // One escape per line, so that a pager or a line-wise reader keeps colours.
            Some(code) => {
                let lines: Vec<String> = token
                    .split('\n')
                    .map(|l| {
                        if l.is_empty() {
                            String::new()
                        } else {
                            format!("\x1b[{code}m{l}\x1b[0m")
                        }
                    })
                    .collect();
                out.push_str(&lines.join("\n"));
            }
            None => out.push_str(token),
        }
        at = t.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The CSS class of a token class (`flx-` and the lower-case name).
fn css_class(class: Class) -> String {
    format!("flx-{}", format!("{class:?}").to_lowercase())
}

/// A standalone HTML page showing `text` highlighted; each token is a
/// `<span class="flx-CLASS">`, so a site's own CSS can restyle it.
pub fn html(title: &str, text: &str) -> String {
    let mut body = String::with_capacity(text.len() * 3);
    let mut at = 0;
    for t in tokens(text) {
        body.push_str(&escape_html(&text[at..t.start]));
        let token = escape_html(&text[t.start..t.end]);
        match t.class {
            Class::Name | Class::Operator | Class::Punctuation => body.push_str(&token),
            class => body.push_str(&format!(
                "<span class=\"{}\">{token}</span>",
                css_class(class)
            )),
        }
        at = t.end;
    }
    body.push_str(&escape_html(&text[at..]));
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<pre class=\"flx\">{body}</pre>\n</body>\n</html>\n",
        escape_html(title)
    )
}

const STYLE: &str = "\
pre.flx { font-family: ui-monospace, monospace; line-height: 1.4; }
.flx-comment { color: #6a737d; font-style: italic; }
.flx-keyword { color: #a626a4; }
.flx-declaration { color: #a626a4; font-weight: bold; }
.flx-definition { color: #4078f2; font-weight: bold; }
.flx-constant, .flx-number { color: #986801; }
.flx-string { color: #50a14f; }
.flx-escape, .flx-interpolation { color: #c18401; }
.flx-builtin { color: #0184bc; }
.flx-geometry { color: #0184bc; font-style: italic; }
.flx-label { font-style: italic; }
.flx-invalid { color: #e45649; text-decoration: underline wavy; }
";

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

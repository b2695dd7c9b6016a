//! Tokens with a colour class, for highlighting: the REPL's input line,
//! `flx highlight`, and the reference the editor grammars are tested against.
//! Any text lexes, finished or not, by the grammar's own `tokens` rule (its
//! number, string and name rules are the parser's), so highlighting cannot drift
//! from the parser. A second pass gives words the classes that depend on where
//! they stand (see [`refine`]).

use pest::iterators::Pair;
use pest::Parser;

use super::{FlxParser, Rule, KERNEL_GEOMETRY};

/// What a token is, as an editor theme would colour it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Comment,
    /// Control and binding words: `let`, `if`, `for`, `use`, `and`, ...; and
    /// `param`, `forward`, `lr` where they open or scale a model's item.
    Keyword,
    /// Words that open a declaration: `fn`, `kernel`, `model`, `loss`, `proc`.
    Declaration,
    /// The name a declaration (or a model's `param`) defines.
    Definition,
    /// `true`, `false`, `none`.
    Constant,
    Number,
    String,
    /// An escape (`\n`, `{{`) or a format spec (`{x:.3f}`) inside a string.
    Escape,
    /// The braces (and the spec's colon) of an interpolation `{...}`.
    Interpolation,
    Builtin,
    /// A kernel's pair geometry (`dist`, `dot`, ...) inside its declaration.
    Geometry,
    /// The label of a named argument (`seed:`) or of a record field (`{train: X}`).
    Label,
    Name,
    Operator,
    Punctuation,
    /// A character no token starts with.
    Invalid,
}

/// The reserved words, as the grammar's `keyword` rule lists them (a test
/// keeps the two the same).
pub const KEYWORDS: &[&str] = &[
    "let", "fn", "if", "else", "for", "in", "while", "break", "continue", "return", "true",
    "false", "none", "use", "as", "kernel", "model", "loss", "proc", "and", "or", "not", "try",
    "catch",
];

/// Words that are keywords only directly inside a `model` body.
pub const MODEL_KEYWORDS: &[&str] = &["param", "forward", "lr"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub class: Class,
}

/// The tokens of `text` in order; spaces and newlines between them are left out.
/// `is_builtin` tells builtin names from other names (the builtin table lives above
/// this layer).
pub fn tokens(text: &str, is_builtin: &dyn Fn(&str) -> bool) -> Vec<Token> {
    let mut out = Vec::new();
    let mut interps = Vec::new();
    // The rule accepts every text; the fallback is for safety only.
    match FlxParser::parse(Rule::tokens, text) {
        Ok(pairs) => {
            for p in pairs.flat_map(|p| p.into_inner()) {
                push(&mut out, &mut interps, p, is_builtin);
            }
        }
        Err(_) => out.push(Token {
            start: 0,
            end: text.len(),
            class: Class::Invalid,
        }),
    }
    refine(text, &mut out, &interps);
    out
}

/// Appends the tokens of `p`; `interps` gets the span of each interpolation.
fn push(
    out: &mut Vec<Token>,
    interps: &mut Vec<(usize, usize)>,
    p: Pair<Rule>,
    is_builtin: &dyn Fn(&str) -> bool,
) {
    let span = p.as_span();
    let class = match p.as_rule() {
        Rule::comment => Class::Comment,
        Rule::float | Rule::int => Class::Number,
        Rule::tok_word => word_class(p.as_str(), is_builtin),
        Rule::tok_op => Class::Operator,
        Rule::tok_punct => Class::Punctuation,
        Rule::tok_other => Class::Invalid,
        Rule::string_text => Class::String,
        Rule::escape | Rule::format_spec => Class::Escape,
        Rule::tok_brace | Rule::tok_colon => Class::Interpolation,
        Rule::tok_interp => {
            interps.push((span.start(), span.end()));
            for inner in p.into_inner() {
                push(out, interps, inner, is_builtin);
            }
            return;
        }
        Rule::tok_string => {
            // Inner tokens, with the text between them (the quotes) as string.
            let mut at = span.start();
            for inner in p.into_inner() {
                let s = inner.as_span().start();
                if s > at {
                    out.push(Token {
                        start: at,
                        end: s,
                        class: Class::String,
                    });
                }
                at = inner.as_span().end();
                push(out, interps, inner, is_builtin);
            }
            if span.end() > at {
                out.push(Token {
                    start: at,
                    end: span.end(),
                    class: Class::String,
                });
            }
            return;
        }
        Rule::EOI => return,
        _ => Class::Invalid,
    };
    if span.end() > span.start() {
        out.push(Token {
            start: span.start(),
            end: span.end(),
            class,
        });
    }
}

/// An open bracket, as far as classes care.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Paren,
    Bracket,
    Brace,
    /// A `model`'s body.
    Model,
    /// An interpolation.
    Interp,
}

/// Gives words the classes that depend on context, as an editor grammar can
/// find it with nested regions (the editor tests hold them to this):
/// - a word after `.` is a field, and after `use` a module: plain names, whatever
///   the word (`f.kernel`, `use std.rfm`);
/// - a word before `:` directly inside `(...)` or `{...}` is a label;
/// - the word after `fn`/`kernel`/`model`/`loss`/`proc`, on its line, is a
///   definition;
/// - a `kernel` declaration binds the geometry names from its keyword to the end
///   of its line (longer while a bracket is open or the line ends with `\`);
/// - directly inside a model body, `param` and `forward` starting an item (a
///   line, or after `{` or `;`) are keywords, `param`'s name a definition, and
///   `lr` in a `param` item a keyword.
fn refine(text: &str, toks: &mut [Token], interps: &[(usize, usize)]) {
    let mut open: Vec<Open> = Vec::new();
    let mut interps = interps.iter();
    let mut open_interps: Vec<(usize, usize)> = Vec::new(); // (index in `open`, end of text)
    let mut kernel: Option<usize> = None; // depth of the kernel being declared
    let mut model: Option<usize> = None; // depth of a model head awaiting its body
    let mut in_param = false; // on a `param` line of the innermost model body
    let mut defines = false; // the next word is the name being defined
    for i in 0..toks.len() {
        let t = toks[i];
        let s = &text[t.start..t.end];
        let prev = i
            .checked_sub(1)
            .map(|j| (toks[j], &text[toks[j].start..toks[j].end]));
        // An interpolation left open ends with its text (spans nest, so the
        // innermost ends first).
        while let Some(&(at, end)) = open_interps.last() {
            if end > t.start {
                break;
            }
            open.truncate(at);
            open_interps.pop();
        }
        let depth = open.len();
        let gap = &text[prev.map_or(0, |(p, _)| p.end)..t.start];
        let breaks = line_breaks(gap);
        if breaks {
            kernel = kernel.filter(|&k| depth > k);
            model = model.filter(|&m| depth > m);
            if open.last() == Some(&Open::Model) {
                in_param = false;
            }
        }
        let in_model = open.last() == Some(&Open::Model);
        let item_start = in_model
            && (breaks
                || prev.is_some_and(|(p, ps)| {
                    p.class == Class::Punctuation && (ps == "{" || ps == ";")
                }));
        let was_defining = std::mem::take(&mut defines) && !breaks;
        match t.class {
            Class::Punctuation => match s {
                "(" => open.push(Open::Paren),
                "[" => open.push(Open::Bracket),
                "{" if model == Some(depth) => {
                    model = None;
                    in_param = false;
                    open.push(Open::Model);
                }
                "{" => open.push(Open::Brace),
                // A closer that does not match the innermost bracket closes nothing,
                // as in an editor grammar's nested regions.
                ")" | "]" | "}" => {
                    let closes = match open.last() {
                        Some(Open::Paren) => s == ")",
                        Some(Open::Bracket) => s == "]",
                        Some(Open::Brace | Open::Model) => s == "}",
                        _ => false,
                    };
                    if closes && open.pop() == Some(Open::Model) {
                        in_param = false;
                    }
                    kernel = kernel.filter(|&k| depth > k);
                    model = model.filter(|&m| depth > m);
                }
                ";" => {
                    kernel = kernel.filter(|&k| depth > k);
                    model = model.filter(|&m| depth > m);
                    in_param &= !in_model;
                }
                _ => {}
            },
            Class::Interpolation if s == "{" => {
                let end = interps
                    .find(|(start, _)| *start == t.start)
                    .map_or(text.len(), |&(_, end)| end);
                open_interps.push((open.len(), end));
                open.push(Open::Interp);
            }
            Class::Interpolation if s == "}" => {
                if let Some((at, _)) = open_interps.pop() {
                    open.truncate(at);
                }
            }
            Class::Keyword
            | Class::Declaration
            | Class::Constant
            | Class::Builtin
            | Class::Name => {
                let plain = matches!(t.class, Class::Name | Class::Builtin);
                let after_dot =
                    prev.is_some_and(|(p, ps)| p.class == Class::Punctuation && ps == ".");
                let before_colon = toks
                    .get(i + 1)
                    .is_some_and(|n| n.class == Class::Punctuation && &text[n.start..n.end] == ":");
                let after_use =
                    prev.is_some_and(|(p, ps)| p.class == Class::Keyword && ps == "use");
                let class = if after_dot || (after_use && plain) {
                    Class::Name
                } else if before_colon
                    && matches!(open.last(), Some(Open::Paren | Open::Brace | Open::Model))
                {
                    Class::Label
                } else if was_defining && plain {
                    Class::Definition
                } else if item_start && (s == "param" || s == "forward") {
                    defines = s == "param";
                    in_param = defines;
                    Class::Keyword
                } else if in_model && in_param && s == "lr" {
                    Class::Keyword
                } else if kernel.is_some() && plain && KERNEL_GEOMETRY.contains(&s) {
                    Class::Geometry
                } else {
                    t.class
                };
                if class == Class::Declaration {
                    defines = true;
                    match s {
                        "kernel" => kernel = Some(depth),
                        "model" => model = Some(depth),
                        _ => {}
                    }
                }
                toks[i].class = class;
            }
            _ => {}
        }
    }
}

/// Whether `gap`, the text between two tokens, ends a line: a newline not
/// escaped by a `\` just before it.
fn line_breaks(gap: &str) -> bool {
    gap.match_indices('\n')
        .any(|(at, _)| !gap[..at].trim_end_matches('\r').ends_with('\\'))
}

fn word_class(word: &str, is_builtin: &dyn Fn(&str) -> bool) -> Class {
    match word {
        "true" | "false" | "none" => Class::Constant,
        "fn" | "kernel" | "model" | "loss" | "proc" => Class::Declaration,
        // The grammar decides what a keyword is: a word that is not a name.
        _ if !is_name(word) => Class::Keyword,
        _ if is_builtin(word) => Class::Builtin,
        _ => Class::Name,
    }
}

fn is_name(word: &str) -> bool {
    FlxParser::parse(Rule::ident, word)
        .is_ok_and(|mut p| p.next().is_some_and(|p| p.as_str() == word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(word: &str) -> bool {
        matches!(word, "exp" | "std")
    }

    fn classes(text: &str) -> Vec<(&str, Class)> {
        tokens(text, &builtin)
            .into_iter()
            .map(|t| (&text[t.start..t.end], t.class))
            .collect()
    }

    #[test]
    fn every_class_and_the_text_between() {
        use Class::*;
        assert_eq!(
            classes("kernel k(L = 1.5) = exp(-dist / L)  # c"),
            vec![
                ("kernel", Declaration),
                ("k", Definition),
                ("(", Punctuation),
                ("L", Name),
                ("=", Operator),
                ("1.5", Number),
                (")", Punctuation),
                ("=", Operator),
                ("exp", Builtin),
                ("(", Punctuation),
                ("-", Operator),
                ("dist", Geometry),
                ("/", Operator),
                ("L", Name),
                (")", Punctuation),
                ("# c", Comment),
            ]
        );
        assert_eq!(
            classes(r#"let s = "a\n{x:.3f}{{" if true"#),
            vec![
                ("let", Keyword),
                ("s", Name),
                ("=", Operator),
                ("\"", String),
                ("a", String),
                ("\\n", Escape),
                ("{", Interpolation),
                ("x", Name),
                (":", Interpolation),
                (".3f", Escape),
                ("}", Interpolation),
                ("{{", Escape),
                ("\"", String),
                ("if", Keyword),
                ("true", Constant),
            ]
        );
    }

    /// The words of `text` whose class is not the one their spelling gives.
    fn contextual(text: &str) -> Vec<(&str, Class)> {
        classes(text)
            .into_iter()
            .filter(|&(w, c)| {
                w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && c != word_class(w, &builtin)
            })
            .collect()
    }

    #[test]
    fn classes_that_depend_on_context() {
        use Class::*;
        // Fields, modules, labels (not in slices or at an interpolation's top), definitions.
        assert_eq!(
            contextual(
                "use std.rfm\nf(r.model, seed: 1, {kernel: k}, X[a:b], \"{x:.2} {g(axis: 0)}\")"
            ),
            vec![
                ("std", Name),
                ("model", Name),
                ("seed", Label),
                ("kernel", Label),
                ("axis", Label)
            ]
        );
        // Geometry from `kernel` to the end of its line, longer in brackets or after `\`.
        assert_eq!(
            contextual("kernel k(L) = exp(-(dist +\n dot)) * \\\n xnorm\nlet y = znorm"),
            vec![
                ("k", Definition),
                ("dist", Geometry),
                ("dot", Geometry),
                ("xnorm", Geometry)
            ]
        );
        assert_eq!(
            contextual("{ kernel k() = dist }; dot"),
            vec![("k", Definition), ("dist", Geometry)]
        );
        // Model items: `param`, `forward` and a param's `lr`, only directly in the body.
        assert_eq!(
            contextual("model m(d) {\n    param W = f(lr) lr 0.1\n    forward(x) = x @ W\n    let lr = 1; param b = 0 lr lr\n}\nparam forward lr"),
            vec![
                ("m", Definition),
                ("param", Keyword),
                ("W", Definition),
                ("lr", Keyword),
                ("forward", Keyword),
                ("param", Keyword),
                ("b", Definition),
                ("lr", Keyword),
                ("lr", Keyword),
            ]
        );
    }

    #[test]
    fn unfinished_text_still_lexes_to_the_end() {
        use Class::*;
        assert_eq!(
            classes(r#"f("data/dig"#),
            vec![
                ("f", Name),
                ("(", Punctuation),
                ("\"", String),
                ("data/dig", String)
            ]
        );
        assert_eq!(
            classes(r#""{a + "#),
            vec![
                ("\"", String),
                ("{", Interpolation),
                ("a", Name),
                ("+", Operator)
            ]
        );
        assert_eq!(
            classes("1..3 $"),
            vec![
                ("1", Number),
                ("..", Operator),
                ("3", Number),
                ("$", Invalid)
            ]
        );
        assert_eq!(classes("lr letter"), vec![("lr", Name), ("letter", Name)]);
    }

    #[test]
    fn examples_and_stdlib_lex_without_gaps_or_invalid_tokens() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in ["examples", "stdlib"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("folder") {
                let path = entry.expect("entry").path();
                if path.extension().is_none_or(|e| e != "flx") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read");
                let mut at = 0;
                for t in tokens(&text, &|_| false) {
                    assert!(
                        text[at..t.start]
                            .chars()
                            .all(|c| c.is_whitespace() || c == '\\'),
                        "{}: text skipped before byte {}",
                        path.display(),
                        t.start
                    );
                    assert_ne!(
                        t.class,
                        Class::Invalid,
                        "{}: `{}`",
                        path.display(),
                        &text[t.start..t.end]
                    );
                    at = t.end;
                }
                assert!(text[at..].trim().is_empty());
            }
        }
    }

    #[test]
    fn the_keyword_list_is_the_grammars() {
        let grammar = include_str!("../../grammar/flx.pest");
        let rule = grammar.split("keyword = _{").nth(1).expect("keyword rule");
        let rule = &rule[..rule.find('}').expect("end of rule")];
        let listed: Vec<&str> = rule.split('"').skip(1).step_by(2).collect();
        assert_eq!(listed, KEYWORDS);
        for k in KEYWORDS {
            assert!(!is_name(k), "{k}");
        }
    }

    #[test]
    fn incomplete_means_more_lines_could_finish_it() {
        use crate::syntax::is_incomplete;
        for text in [
            "f(1,",
            "fn f(x) {",
            "let s = \"abc",
            "1 +",
            "x = 2 *\n",
            "y = a \\",
            "\"{(\"",
        ] {
            assert!(is_incomplete(text), "{text:?}");
        }
        for text in [
            "1 + 2",
            "let x =",
            "fn f(x)",
            "f(1))",
            "x.",
            "if c { 1 }",
            "",
            "1 2",
        ] {
            assert!(!is_incomplete(text), "{text:?}");
        }
    }
}

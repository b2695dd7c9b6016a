//! Tokens with a colour class, for highlighting: the REPL's input line, and
//! the reference the editor grammars are tested against. Any text lexes,
//! finished or not, by the grammar's own `tokens` rule (its number, string and
//! name rules are the parser's), so highlighting cannot drift from the parser.

use pest::iterators::Pair;
use pest::Parser;

use super::{FlxParser, Rule};

/// What a token is, as an editor theme would colour it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Comment,
    /// Control and binding words: `let`, `if`, `for`, `use`, `and`, ...
    Keyword,
    /// Words that open a declaration: `fn`, `kernel`, `model`, `loss`, `proc`.
    Declaration,
    /// `true`, `false`, `none`.
    Constant,
    Number,
    String,
    /// An escape (`\n`, `{{`) or a format spec (`{x:.3f}`) inside a string.
    Escape,
    /// The braces (and the spec's colon) of an interpolation `{...}`.
    Interpolation,
    Builtin,
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
    "false", "none", "use", "as", "kernel", "model", "loss", "proc", "and", "or", "not",
];

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
    // The rule accepts every text; the fallback is for safety only.
    match FlxParser::parse(Rule::tokens, text) {
        Ok(pairs) => {
            for p in pairs.flat_map(|p| p.into_inner()) {
                push(&mut out, p, is_builtin);
            }
        }
        Err(_) => out.push(Token {
            start: 0,
            end: text.len(),
            class: Class::Invalid,
        }),
    }
    out
}

fn push(out: &mut Vec<Token>, p: Pair<Rule>, is_builtin: &dyn Fn(&str) -> bool) {
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
            for inner in p.into_inner() {
                push(out, inner, is_builtin);
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
                push(out, inner, is_builtin);
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

    fn classes(text: &str) -> Vec<(&str, Class)> {
        tokens(text, &|w| w == "exp")
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
                ("k", Name),
                ("(", Punctuation),
                ("L", Name),
                ("=", Operator),
                ("1.5", Number),
                (")", Punctuation),
                ("=", Operator),
                ("exp", Builtin),
                ("(", Punctuation),
                ("-", Operator),
                ("dist", Name),
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

//! Source text to AST: the pest grammar, a bracket pre-scan that guards the
//! nesting depth, lowering into `ast`, and parse errors in plain words.
//! Nothing here evaluates or does I/O.

pub mod ast;
pub mod lex;
mod lower;

use pest::error::{ErrorVariant, InputLocation};
use pest::Parser;
use pest_derive::Parser;

use crate::diag::{Diag, Span};

#[derive(Parser)]
#[grammar = "../grammar/flx.pest"]
pub struct FlxParser;

/// The pair geometry a kernel body is written over (see the design brief): names
/// bound only inside `kernel` bodies.
pub const KERNEL_GEOMETRY: [&str; 6] = ["dist", "sqdist", "dot", "xnorm", "znorm", "l1dist"];

/// Deepest bracket nesting accepted; deeper input is refused before pest sees
/// it, so neither pest's recursion nor ours can exhaust the stack.
pub const MAX_NESTING: usize = 128;

/// Parse a whole file. `file` is its index in the session's `SourceMap`.
pub fn parse_module(text: &str, file: u32) -> Result<ast::Module, Diag> {
    check_brackets(text, file)?;
    let mut pairs =
        FlxParser::parse(Rule::program, text).map_err(|e| parse_error(e, text, file))?;
    lower::lower_program(
        pairs.next().expect("program rule always yields one pair"),
        file,
    )
}

/// Whether `text` is the start of an input that more lines could finish: a
/// bracket, block or string is open, or the last line ends in a binary operator
/// (or a `\`). The REPL keeps reading while this holds; any other parse error
/// is reported at once.
pub fn is_incomplete(text: &str) -> bool {
    match open_brackets(text, 0) {
        Err(_) => false,
        Ok(open) if !open.is_empty() => true,
        Ok(_) => {
            FlxParser::parse(Rule::program, text).is_err()
                && (text.trim_end_matches([' ', '\t', '\r']).ends_with('\\')
                    || FlxParser::parse(Rule::program, &format!("{text}\n0")).is_ok())
        }
    }
}

/// Where the string open at the end of `text` starts (the byte after its quote),
/// if `text` ends inside a string and not inside one of its interpolations.
pub fn open_string(text: &str) -> Option<usize> {
    match open_brackets(text, 0).ok()?.last() {
        Some(&('"', at)) => Some(at + 1),
        _ => None,
    }
}

/// Match brackets and quotes, skipping comments, so that an unclosed or stray
/// bracket gets a precise message and nesting depth is bounded.
fn check_brackets(text: &str, file: u32) -> Result<(), Diag> {
    if let Some(&(o, at)) = open_brackets(text, file)?.last() {
        let what = if o == '"' {
            "string".to_string()
        } else {
            format!("`{o}`")
        };
        return Err(Diag::new(
            "flx::syntax::unclosed",
            format!("this {what} is never closed"),
        )
        .at(Span::new(file, at, at + 1))
        .label("opened here"));
    }
    Ok(())
}

/// The brackets and quotes still open at the end of `text`, outermost first,
/// with their byte offsets; an error for a stray or mismatched closer.
fn open_brackets(text: &str, file: u32) -> Result<Vec<(char, usize)>, Diag> {
    let mut stack: Vec<(char, usize)> = Vec::new();
    let mut chars = text.char_indices().peekable();
    // Inside a string, `{` opens an interpolation: track string state on the same stack.
    while let Some((i, c)) = chars.next() {
        let in_string = matches!(stack.last(), Some(('"', _)));
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    stack.pop();
                }
                '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                    chars.next();
                }
                '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                    chars.next();
                }
                '{' => stack.push(('{', i)),
                '}' => {
                    return Err(
                        Diag::new("flx::syntax::unmatched", "unmatched `}` in a string")
                            .at(Span::new(file, i, i + 1))
                            .help("write `}}` for a literal brace"),
                    )
                }
                _ => {}
            }
            continue;
        }
        match c {
            '#' => {
                while let Some(&(_, c)) = chars.peek() {
                    if c == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            '"' => stack.push(('"', i)),
            '(' | '[' | '{' => {
                stack.push((c, i));
                if stack.len() > MAX_NESTING {
                    return Err(Diag::new(
                        "flx::syntax::too_deep",
                        format!("brackets nested more than {MAX_NESTING} deep"),
                    )
                    .at(Span::new(file, i, i + 1)));
                }
            }
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match stack.pop() {
                    Some((o, _)) if o == open => {}
                    Some((o, at)) => {
                        return Err(Diag::new(
                            "flx::syntax::unmatched",
                            format!("`{c}` does not close `{o}`"),
                        )
                        .at(Span::new(file, i, i + 1))
                        .label(format!("expected `{}` here", closer(o)))
                        .with_label(Span::new(file, at, at + 1), "opened here"))
                    }
                    None => {
                        return Err(
                            Diag::new("flx::syntax::unmatched", format!("unmatched `{c}`"))
                                .at(Span::new(file, i, i + 1))
                                .label("nothing to close"),
                        )
                    }
                }
            }
            _ => {}
        }
    }
    Ok(stack)
}

fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        '"' => '"',
        _ => '}',
    }
}

/// What a rule means to a person; `None` for rules never worth naming.
fn describe(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        expr | postfix | float | int | string | if_expr | lambda | record | block | paren
        | list | kw_true | kw_false | kw_none | slice_start | slice_stop | slice_step | arg => {
            "an expression"
        }
        ident | arg_name | place => "a name",
        tuple_pattern => "`(a, b)`",
        params => "a parameter list `(...)`",
        param => "a parameter",
        call_args => "`(`",
        index => "`[`",
        field => "`.`",
        slice => "a slice",
        neg | not => "an expression",
        range | range_incl | or | and | eq | ne | le | ge | lt | gt | add | sub | mul | div
        | rem | matmul | pow => "an operator",
        assign_op => "`=`",
        kw_in => "`in`",
        kw_else => "`else`",
        kw_as => "`as`",
        module_path => "a module path such as `std.rfm`",
        model_body => "`{`",
        param_decl | kw_param => "`param`",
        forward_decl | kw_forward => "`forward`",
        lr_scale | kw_lr => "`lr`",
        record_field => "a field `name: value`",
        EOI => "end of input",
        kw_let | kw_fn | kw_for | kw_while | kw_break | kw_continue | kw_return | kw_use
        | kw_kernel | kw_model | kw_loss | kw_proc | use_decl | fn_decl | kernel_decl
        | loss_decl | proc_decl | model_decl | let_stmt | for_stmt | while_stmt | break_stmt
        | continue_stmt | return_stmt | assign_stmt => "a statement",
        _ => return None,
    })
}

/// Rewrite pest's error (rule names) into plain words, pointing at the token.
fn parse_error(e: pest::error::Error<Rule>, text: &str, file: u32) -> Diag {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<&str> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            if let Some(d) = describe(*r) {
                if !expected.contains(&d) {
                    expected.push(d);
                }
            }
        }
    }
    // A statement may always be followed by a newline: say so only when nothing else fits.
    let found = token_at(text, pos);
    let prev = previous_token(text, pos);
    let mut message = match expected.len() {
        0 => format!("unexpected {found}"),
        1 => format!("expected {}", expected[0]),
        n => format!(
            "expected {} or {}",
            expected[..n - 1].join(", "),
            expected[n - 1]
        ),
    };
    if !expected.is_empty() {
        if let Some(p) = &prev {
            message.push_str(&format!(" after `{p}`"));
        }
    }
    let at_end = text[pos.min(text.len())..].trim().is_empty();
    let label = if at_end {
        "input ends here".to_string()
    } else {
        format!("found {found}")
    };
    let end = (pos + token_len(text, pos)).min(text.len());
    let mut d = Diag::new("flx::syntax::parse", message)
        .at(Span::new(file, pos, end.max(pos)))
        .label(label);
    // The statement before could have ended here: the token is simply out of place.
    if expected.contains(&"end of input") && !at_end {
        d.message = match prev {
            Some(p) => format!("unexpected {found} after `{p}`"),
            None => format!("unexpected {found}"),
        };
        d = d.label("this does not continue the statement before it").help("statements end at a newline or `;`; between two values you may need an operator or a comma");
    }
    d
}

fn token_len(text: &str, pos: usize) -> usize {
    let rest = &text[pos.min(text.len())..];
    let mut it = rest.char_indices();
    match it.next() {
        None => 0,
        Some((_, c)) if c.is_alphanumeric() || c == '_' => rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len()),
        Some((_, c)) => c.len_utf8(),
    }
}

fn token_at(text: &str, pos: usize) -> String {
    let rest = &text[pos.min(text.len())..];
    match rest.chars().next() {
        None => "end of input".to_string(),
        Some('\n') | Some('\r') => "end of line".to_string(),
        Some(_) => format!("`{}`", &rest[..token_len(text, pos)]),
    }
}

/// The token just before `pos` on the same line (for "after `=`").
fn previous_token(text: &str, pos: usize) -> Option<String> {
    let before = text[..pos.min(text.len())].trim_end_matches([' ', '\t']);
    let line = before.rsplit('\n').next().unwrap_or("");
    let line = line.trim_end();
    if line.is_empty() {
        return None;
    }
    let last = line.chars().last()?;
    if last.is_alphanumeric() || last == '_' {
        // Step past the delimiter by its own length: it may be a multi-byte character.
        let start = line
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        Some(line[start..].to_string())
    } else {
        let cut = line.len().saturating_sub(2);
        let two = line.is_char_boundary(cut)
            && ["..", "==", "!=", "<=", ">=", "+=", "-=", "*=", "/="].contains(&&line[cut..]);
        Some(if two {
            line[line.len() - 2..].to_string()
        } else {
            last.to_string()
        })
    }
}

//! The terminal side of the REPL on rustyline: multi-line input decided by
//! the parser, highlighting by the grammar's token classes, dimmed hints from
//! history, tab completion, and persistent history.

use std::borrow::Cow;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::config::{ColorMode, CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::history::FileHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor};

use super::{find_command, history_path, Next, Repl, COMMANDS};
use crate::highlight;
use crate::syntax::lex::KEYWORDS;
use crate::syntax::{self};
use crate::Session;

const PROMPT: &str = "flx> ";

pub(super) fn run(mut repl: Repl, color: bool) -> u8 {
    let config = Config::builder()
        .max_history_size(10_000)
        .and_then(|c| c.history_ignore_dups(true))
        .map(|c| {
            c.history_ignore_space(true)
                .completion_type(CompletionType::List)
                .color_mode(if color {
                    ColorMode::Enabled
                } else {
                    ColorMode::Disabled
                })
                .build()
        });
    let editor = config.and_then(Editor::<Helper, FileHistory>::with_config);
    let mut editor = match editor {
        Ok(e) => e,
        Err(e) => {
            eprintln!("flx: cannot start the line editor: {e}");
            return 1;
        }
    };
    editor.set_helper(Some(Helper {
        session: repl.session.clone(),
        hinter: HistoryHinter::new(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if path.exists() {
            if let Err(e) = editor.load_history(path) {
                eprintln!("flx: cannot read history {}: {e}", path.display());
            }
        }
    }
    println!(
        "flx {}: type code, `:help` for help, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    let mut inputs = 0;
    let mut history_failed = false;
    loop {
        match editor.readline(PROMPT) {
            Ok(text) => {
                if text.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(text.as_str());
                if let (Some(path), false) = (&history, history_failed) {
                    if let Err(e) = editor.append_history(path) {
                        eprintln!("flx: cannot save history to {}: {e}", path.display());
                        history_failed = true;
                    }
                }
                inputs += 1;
                if let Next::Quit = repl.submit(&text, &format!("input {inputs}"), 1) {
                    break;
                }
            }
            // Ctrl-C at the prompt drops the line being typed.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("flx: the line editor failed: {e}");
                return 1;
            }
        }
    }
    0
}

struct Helper {
    session: Rc<RefCell<Session>>,
    hinter: HistoryHinter,
}

impl rustyline::Helper for Helper {}

impl Validator for Helper {
    /// Enter runs the input unless the parser says more lines could finish it.
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        Ok(
            if !input.trim_start().starts_with(':') && syntax::is_incomplete(input) {
                ValidationResult::Incomplete
            } else {
                ValidationResult::Valid(None)
            },
        )
    }
}

impl Hinter for Helper {
    type Hint = String;
    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        self.hinter.hint(line, pos, ctx)
    }
}

/// ANSI colours for the token classes (the editor grammars' scopes).
impl Highlighter for Helper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if line.trim_start().starts_with(':') {
            // A meta-command: the command word in bold, its argument as code.
            let word_end = line.find(char::is_whitespace).unwrap_or(line.len());
            let (word, arg) = line.split_at(word_end);
            return Cow::Owned(format!("\x1b[1m{word}\x1b[0m{}", highlight::ansi(arg)));
        }
        Cow::Owned(highlight::ansi(line))
    }

    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        default: bool,
    ) -> Cow<'b, str> {
        if default {
            Cow::Owned(format!("\x1b[1;32m{prompt}\x1b[0m"))
        } else {
            Cow::Borrowed(prompt)
        }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }

    /// Colours depend on the text, not on the cursor: repaint on edits only.
    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        kind != CmdKind::MoveCursor
    }
}

impl Completer for Helper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let Some(command_line) = before.trim_start().strip_prefix(':') else {
            return Ok(self.complete_code(before, 0));
        };
        let offset = pos - command_line.len();
        let Some(space) = command_line.find(char::is_whitespace) else {
            // The command word itself.
            let names = COMMANDS.iter().map(|c| c.0.to_string());
            return Ok((offset, candidates(command_line, names)));
        };
        let arg_start = offset + space;
        let arg = &line[arg_start..pos];
        Ok(match find_command(&command_line[..space]) {
            Some("load") => {
                // The file name may be quoted, as in a `use "..."`.
                let path = arg.trim_start().trim_start_matches('"');
                complete_path(path, pos - path.len())
            }
            Some("help" | "type" | "time") => self.complete_code(arg, arg_start),
            _ => (pos, Vec::new()),
        })
    }
}

impl Helper {
    /// Complete the code `text`, which starts at byte `offset` of the line.
    fn complete_code(&self, text: &str, offset: usize) -> (usize, Vec<Pair>) {
        if let Some(start) = syntax::open_string(text) {
            return complete_path(&text[start..], offset + start);
        }
        let word_start = text
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| {
                i + text[i..].chars().next().map_or(1, char::len_utf8)
            });
        let prefix = &text[word_start..];
        let start = offset + word_start;
        let before = &text[..word_start];
        if let Some(receiver) = before.strip_suffix('.') {
            return (start, candidates(prefix, self.fields_of(receiver)));
        }
        if prefix.is_empty() || prefix.starts_with(|c: char| c.is_ascii_digit()) {
            return (start, Vec::new());
        }
        let session = self.session.borrow();
        let names = KEYWORDS
            .iter()
            .map(|k| k.to_string())
            .chain(session.builtins().names().map(String::from))
            .chain(session.bindings().into_iter().map(|(n, _)| n.to_string()));
        (start, candidates(prefix, names))
    }

    /// The fields of the value named by the dotted path at the end of `text`
    /// (`r.train` in `f(r.train`); nothing is evaluated.
    fn fields_of(&self, text: &str) -> Vec<String> {
        let path_start = text
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| {
                i + text[i..].chars().next().map_or(1, char::len_utf8)
            });
        let path: Vec<&str> = text[path_start..].split('.').collect();
        if path == ["std"] && text[..path_start].trim_end().ends_with("use") {
            return crate::check::STDLIB
                .iter()
                .map(|(n, _)| n.to_string())
                .collect();
        }
        let session = self.session.borrow();
        let builtin = || {
            session
                .builtins()
                .lookup(path[0])
                .map(crate::eval::value::Value::Builtin)
        };
        let Some(mut value) = session.get(path[0]).or_else(builtin) else {
            return Vec::new();
        };
        for name in &path[1..] {
            match session.interp.member(&value, name) {
                Some(v) => value = v,
                None => return Vec::new(),
            }
        }
        session.interp.field_names(&value)
    }
}

/// The names starting with `prefix`, sorted, each once.
fn candidates(prefix: &str, names: impl IntoIterator<Item = String>) -> Vec<Pair> {
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| Pair {
            display: n.clone(),
            replacement: n,
        })
        .collect()
}

/// Complete a file path typed so far (`path`, starting at byte `offset`):
/// the entries of its folder (relative to the working directory) that start
/// with its last component; folders end in `/`. Characters special in flx
/// strings are escaped.
fn complete_path(path: &str, offset: usize) -> (usize, Vec<Pair>) {
    let (dir, prefix) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    let start = offset + dir.len();
    let folder = if dir.is_empty() {
        Path::new(".")
    } else {
        Path::new(dir)
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return (start, Vec::new());
    };
    let mut out: Vec<Pair> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            let slash = if e.path().is_dir() { "/" } else { "" };
            let escaped: String = name
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    '{' | '}' => vec![c, c],
                    _ => vec![c],
                })
                .collect();
            Some(Pair {
                display: format!("{name}{slash}"),
                replacement: format!("{escaped}{slash}"),
            })
        })
        .collect();
    out.sort_by(|a, b| a.display.cmp(&b.display));
    (start, out)
}

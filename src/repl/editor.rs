//! The terminal side of the REPL on rustyline: multi-line input decided by
//! the parser, highlighting by the grammar's token classes, dimmed hints from
//! history, tab completion, and persistent history.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::config::{ColorMode, CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::history::FileHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor};

use super::{history_path, Next, Repl};
use crate::highlight;
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
    let _quiet = QuietControlKeys::new();
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

/// While alive, the terminal does not echo control keys: a Ctrl-C during a
/// computation would print `^C` into a progress bar's line, which then
/// wraps, and clearing the bar would leave a stale line on screen.
struct QuietControlKeys(Option<libc::termios>);

impl QuietControlKeys {
    fn new() -> QuietControlKeys {
        // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed termios they fill.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return QuietControlKeys(None);
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHOCTL;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) != 0 {
                return QuietControlKeys(None);
            }
            QuietControlKeys(Some(saved))
        }
    }
}

impl Drop for QuietControlKeys {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: puts back the settings read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
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
        let (start, found) = super::complete(&self.session.borrow(), line, pos);
        let pairs = found
            .into_iter()
            .map(|c| Pair {
                display: c.display,
                replacement: c.replacement,
            })
            .collect();
        Ok((start, pairs))
    }
}

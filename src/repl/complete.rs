//! Tab completion, for the terminal's line editor and a notebook's kernel:
//! meta-commands, names, builtins, keywords, fields after `.` and file
//! paths in strings. Nothing is evaluated.

use std::path::Path;

use super::{find_command, COMMANDS};
use crate::syntax::lex::KEYWORDS;
use crate::syntax::{self};
use crate::Session;

/// One completion: what the list shows and what replaces the typed text.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub display: String,
    pub replacement: String,
}

/// The completions of `line` with the cursor at byte `pos`: the byte where
/// the text they replace starts, and the candidates, sorted.
pub fn complete(session: &Session, line: &str, pos: usize) -> (usize, Vec<Candidate>) {
    let pos = floor_boundary(line, pos);
    let before = &line[..pos];
    let Some(command_line) = before.trim_start().strip_prefix(':') else {
        return complete_code(session, before, 0);
    };
    let offset = pos - command_line.len();
    let Some(space) = command_line.find(char::is_whitespace) else {
        // The command word itself.
        let names = COMMANDS.iter().map(|c| c.0.to_string());
        return (offset, candidates(command_line, names));
    };
    let arg_start = offset + space;
    let arg = &line[arg_start..pos];
    match find_command(&command_line[..space]) {
        Some("load") => {
            // The file name may be quoted, as in a `use "..."`.
            let path = arg.trim_start().trim_start_matches('"');
            complete_path(path, pos - path.len())
        }
        Some("help" | "type" | "time") => complete_code(session, arg, arg_start),
        _ => (pos, Vec::new()),
    }
}

/// `pos`, moved back to the start of the character it falls in (a kernel's
/// cursor may come from another encoding's count).
fn floor_boundary(text: &str, pos: usize) -> usize {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

/// Complete the code `text`, which starts at byte `offset` of the line.
fn complete_code(session: &Session, text: &str, offset: usize) -> (usize, Vec<Candidate>) {
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
        return (start, candidates(prefix, fields_of(session, receiver)));
    }
    if prefix.is_empty() || prefix.starts_with(|c: char| c.is_ascii_digit()) {
        return (start, Vec::new());
    }
    let names = KEYWORDS
        .iter()
        .map(|k| k.to_string())
        .chain(session.builtins().names().map(String::from))
        .chain(session.bindings().into_iter().map(|(n, _)| n.to_string()));
    (start, candidates(prefix, names))
}

/// The fields of the value named by the dotted path at the end of `text`
/// (`r.train` in `f(r.train`).
fn fields_of(session: &Session, text: &str) -> Vec<String> {
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

/// The names starting with `prefix`, sorted, each once.
fn candidates(prefix: &str, names: impl IntoIterator<Item = String>) -> Vec<Candidate> {
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| Candidate {
            display: n.clone(),
            replacement: n,
        })
        .collect()
}

/// Complete a file path typed so far (`path`, starting at byte `offset`):
/// the entries of its folder (relative to the working directory) that start
/// with its last component; folders end in `/`. Characters special in flx
/// strings are escaped.
fn complete_path(path: &str, offset: usize) -> (usize, Vec<Candidate>) {
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
    let mut out: Vec<Candidate> = entries
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
            Some(Candidate {
                display: format!("{name}{slash}"),
                replacement: format!("{escaped}{slash}"),
            })
        })
        .collect();
    out.sort_by(|a, b| a.display.cmp(&b.display));
    (start, out)
}

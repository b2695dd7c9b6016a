//! `flx repl [FILE]` and plain `flx`: one `Session` fed input by input, from
//! a line editor on a terminal (`editor`) or from piped stdin, with the
//! meta-commands (`:help`, `:type`, ...) handled here.
//!
//! On a terminal, Ctrl-C during a computation sets the interpreter's
//! interrupt flag (polled by loops, calls, builtins and compiled code), so the
//! computation stops with an "interrupted" diagnostic and the session is kept.
//!
//! `Repl::embedded` is the same REPL without a terminal, for a notebook's
//! cells (the Python package's magic and Jupyter kernel): values and
//! failures come back to the caller instead of going to stdout and stderr.

mod complete;
mod editor;

pub use complete::{complete, Candidate};

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::diag::{did_you_mean, Diag, SourceMap};
use crate::eval::format::{kernel_repr, repr};
use crate::eval::value::Value;
use crate::format::shape_str;
use crate::syntax::{self, ast::FnDef};
use crate::{Options, Session, StdHost};

/// The meta-commands: name, argument, what it does. A unique prefix also works
/// (`:t` is `:type`, the first that matches).
const COMMANDS: &[(&str, &str, &str)] = &[
    (
        "help",
        "[NAME]",
        "this overview, or the documentation of a builtin, a name you defined or a command",
    ),
    ("type", "EXPR", "the kind and shape of EXPR's value"),
    ("time", "INPUT", "run INPUT and report how long it took"),
    (
        "load",
        "FILE",
        "run a file into the session; its definitions stay",
    ),
    ("vars", "", "the names you defined: kind, shape and memory"),
    ("reset", "", "forget every name and start a fresh session"),
    ("quit", "", "leave (Ctrl-D also does)"),
];

/// Run the REPL: interactive on a terminal, otherwise over stdin's lines.
/// Returns the exit status: 0, or 1 if an input failed (piped) or the editor broke.
pub fn main(options: Options, file: Option<&Path>) -> u8 {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let no_color = crate::no_color();
    let mut repl = Repl::new(
        options,
        !no_color && interactive && std::io::stderr().is_terminal(),
        interactive,
    );
    if let Some(path) = file {
        repl.load(path);
    }
    if interactive {
        editor::run(repl, !no_color)
    } else {
        piped(repl)
    }
}

/// Lines from stdin, gathered into inputs as the editor gathers them.
fn piped(mut repl: Repl) -> u8 {
    let mut stdin = std::io::stdin().lock();
    let (mut input, mut first_line, mut line_no) = (String::new(), 1, 0);
    loop {
        let mut line = String::new();
        match stdin.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("flx: cannot read stdin: {e}");
                return 1;
            }
        }
        line_no += 1;
        if input.is_empty() {
            first_line = line_no;
        }
        input.push_str(&line);
        if input.trim_start().starts_with(':') || !syntax::is_incomplete(&input) {
            let text = std::mem::take(&mut input);
            if let Next::Quit = repl.submit(text.trim_end(), "<stdin>", first_line) {
                return u8::from(repl.failed);
            }
        }
    }
    // An unfinished last input still runs, for its diagnostic.
    if !input.trim().is_empty() {
        repl.submit(input.trim_end(), "<stdin>", first_line);
    }
    u8::from(repl.failed)
}

enum Next {
    Continue,
    Quit,
}

pub struct Repl {
    session: Rc<RefCell<Session>>,
    /// How `:reset` makes a fresh session.
    fresh: Box<dyn Fn() -> Session>,
    /// Set by Ctrl-C; shared by every session this REPL makes (`:reset`).
    interrupt: Arc<AtomicBool>,
    /// Colour in diagnostics.
    color: bool,
    /// Whether any input has failed (the exit status when piped).
    failed: bool,
    /// Embedded: the value and the failures of the current input, kept for
    /// the caller instead of printed.
    cell: Option<Cell>,
}

/// What an embedded input produced.
#[derive(Default)]
struct Cell {
    value: Option<String>,
    failure: Option<Failure>,
}

/// Why an input failed: its diagnostics, or a mistake in a meta-command.
pub enum Failure {
    Diags(Vec<Diag>),
    Usage(String),
}

impl Repl {
    /// On a terminal (`interactive`), Ctrl-C stops a computation.
    fn new(options: Options, color: bool, interactive: bool) -> Repl {
        let interrupt = Arc::new(AtomicBool::new(false));
        let interruptible = interactive && catch_interrupts(&interrupt);
        let session = new_session(&options, &interrupt, interruptible);
        let flag = interrupt.clone();
        Repl {
            session: Rc::new(RefCell::new(session)),
            fresh: Box::new(move || new_session(&options, &flag, interruptible)),
            interrupt,
            color,
            failed: false,
            cell: None,
        }
    }

    /// A REPL over `session` for a host that shows values and failures
    /// itself; `fresh` makes the session `:reset` starts again with.
    /// The session's host keeps its own interrupt flag.
    pub fn embedded(session: Session, fresh: impl Fn() -> Session + 'static) -> Repl {
        Repl {
            session: Rc::new(RefCell::new(session)),
            fresh: Box::new(fresh),
            interrupt: Arc::new(AtomicBool::new(false)),
            color: false,
            failed: false,
            cell: Some(Cell::default()),
        }
    }

    /// The session inputs run in.
    pub fn session(&self) -> std::cell::RefMut<'_, Session> {
        self.session.borrow_mut()
    }

    /// Run one input of an embedded REPL (flx code or a meta-command, as
    /// typed at the prompt): what the prompt would print as its value, or
    /// why it failed. Output of `print` and of the meta-commands goes to
    /// the session's host.
    pub fn run_cell(&mut self, text: &str, name: &str) -> Result<Option<String>, Failure> {
        self.cell = Some(Cell::default());
        self.submit(text, name, 1);
        let cell = self.cell.replace(Cell::default()).unwrap_or_default();
        match cell.failure {
            Some(f) => Err(f),
            None => Ok(cell.value),
        }
    }

    /// Completions of `line` with the cursor at byte `pos` (as Tab does at
    /// the prompt): where the replaced text starts, and the candidates.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<Candidate>) {
        complete(&self.session.borrow(), line, pos)
    }

    /// Run one input: a meta-command or flx code. `name` and `first_line` place
    /// it in diagnostics.
    fn submit(&mut self, text: &str, name: &str, first_line: usize) -> Next {
        let trimmed = text.trim_start();
        if let Some(command) = trimmed.strip_prefix(':') {
            // Keep the column of the argument: diagnostics point into the typed line.
            let indent = text.len() - command.len();
            return self.command(command, indent, name, first_line);
        }
        self.eval(text, name, first_line);
        Next::Continue
    }

    /// Evaluate flx code, print its value and keep it in `_`; true on success.
    fn eval(&mut self, text: &str, name: &str, first_line: usize) -> bool {
        self.interrupt.store(false, Ordering::Relaxed);
        let result = self.session.borrow_mut().run_input(name, text, first_line);
        match result {
            Ok(Some(value)) => {
                match &mut self.cell {
                    Some(cell) => cell.value = Some(repr(&value)),
                    None => self.print(&repr(&value)),
                }
                self.session.borrow_mut().set("_", value);
                true
            }
            Ok(None) => true,
            Err(diags) => {
                self.report(&diags);
                false
            }
        }
    }

    /// Evaluate one expression for `:type` (without keeping it in `_`).
    fn value_of(&mut self, text: &str, name: &str, first_line: usize) -> Option<Value> {
        // Text that does not parse goes on, for the parser's diagnostic.
        if let Ok(m) = syntax::parse_module(text, 0) {
            if !(m.stmts.len() == 1 && m.stmts[0].kind.is_expression()) {
                self.fail("`:type` takes one expression, e.g. `:type X[0]`");
                return None;
            }
        }
        self.interrupt.store(false, Ordering::Relaxed);
        let result = self.session.borrow_mut().run_input(name, text, first_line);
        match result {
            Ok(v) => Some(v.unwrap_or(Value::None)),
            Err(diags) => {
                self.report(&diags);
                None
            }
        }
    }

    fn command(&mut self, line: &str, indent: usize, name: &str, first_line: usize) -> Next {
        let (word, arg) = match line.find(char::is_whitespace) {
            Some(i) => (&line[..i], &line[i..]),
            None => (line, ""),
        };
        let Some(command) = find_command(word) else {
            let names = COMMANDS.iter().map(|c| c.0);
            let hint = did_you_mean(word, names).map_or(String::new(), |m| format!("; {m}"));
            self.fail(&format!(
                "unknown command `:{word}` (`:help` lists them){hint}"
            ));
            return Next::Continue;
        };
        // The argument, at its column in the typed line.
        let padded = format!("{}{arg}", " ".repeat(indent + word.len()));
        let arg = arg.trim();
        match command {
            "help" => self.help(arg),
            "type" if arg.is_empty() => self.fail("`:type` needs an expression: `:type EXPR`"),
            "type" => {
                if let Some(v) = self.value_of(&padded, name, first_line) {
                    let text = self.type_of(&v);
                    self.print(&text);
                }
            }
            "time" if arg.is_empty() => self.fail("`:time` needs an input: `:time EXPR`"),
            "time" => {
                let start = Instant::now();
                if self.eval(&padded, name, first_line) {
                    self.print(&format!("time: {}", human_duration(start.elapsed())));
                }
            }
            "load" if arg.is_empty() => self.fail("`:load` needs a file: `:load FILE`"),
            "load" => {
                self.load(Path::new(arg.trim_matches('"')));
            }
            "vars" => self.vars(),
            "reset" => {
                *self.session.borrow_mut() = (self.fresh)();
            }
            _ => return Next::Quit,
        }
        Next::Continue
    }

    /// Run a file into the session (`flx repl FILE`, `:load FILE`).
    fn load(&mut self, path: &Path) {
        self.interrupt.store(false, Ordering::Relaxed);
        let result = self.session.borrow_mut().run_file(path);
        match result {
            Ok(_) => {}
            Err(diags) => self.report(&diags),
        }
    }

    fn help(&mut self, topic: &str) {
        match self.help_text(topic) {
            Ok(text) => self.print(&text),
            Err(message) => self.fail(&message),
        }
    }

    /// What `:help TOPIC` shows, or why there is nothing to show.
    pub fn help_text(&self, topic: &str) -> Result<String, String> {
        if topic.is_empty() {
            let mut text = String::from(
                "Type flx code: a value is printed and kept in `_`. Input goes on to a new line\n\
                 while a bracket, block or string is open, or after a binary operator.\n\
                 Tab completes names, builtins, fields after `.` and file paths in strings.\n\n",
            );
            for (name, arg, doc) in COMMANDS {
                text.push_str(&format!("  {:<14}{doc}\n", format!(":{name} {arg}")));
            }
            text.push_str(
                "\nCtrl-C stops a computation and keeps the session; Ctrl-D leaves.\n\
                 `:help builtins` lists every builtin; `:help NAME` documents one.",
            );
            return Ok(text);
        }
        if topic == "builtins" {
            let session = self.session.borrow();
            let b = session.builtins();
            let lines: Vec<String> = (0..b.len() as u32).map(|i| b.heading(i)).collect();
            return Ok(lines.join("\n"));
        }
        if let Some(command) = topic.strip_prefix(':').and_then(find_command) {
            let (name, arg, doc) = COMMANDS.iter().find(|c| c.0 == command).expect("found");
            return Ok(format!(":{name} {arg}\n\n{doc}"));
        }
        if let Some(v) = self.lookup(topic) {
            return Ok(self.describe_binding(topic, &v));
        }
        let builtin = {
            let session = self.session.borrow();
            let b = session.builtins();
            b.lookup(topic)
                .map(|i| format!("{}\n\n{}", b.heading(i), b.entry(i).doc))
        };
        if let Some(text) = builtin {
            return Ok(text);
        }
        if crate::syntax::lex::KEYWORDS.contains(&topic) {
            return Ok(format!(
                "`{topic}` is a keyword: docs/language.md describes the language"
            ));
        }
        let names: Vec<String> = self
            .session
            .borrow()
            .builtins()
            .names()
            .map(String::from)
            .chain(
                self.session
                    .borrow()
                    .bindings()
                    .into_iter()
                    .map(|(n, _)| n.to_string()),
            )
            .collect();
        let hint = did_you_mean(topic, names.iter().map(String::as_str))
            .map_or(String::new(), |m| format!("; {m}"));
        Err(format!("no builtin or name `{topic}`{hint}"))
    }

    /// The value a name of the session or a member of one names
    /// (`rfm.fit` after `use std.rfm`), computing nothing.
    fn lookup(&self, path: &str) -> Option<Value> {
        let session = self.session.borrow();
        let mut parts = path.split('.');
        let mut value = session.get(parts.next()?)?;
        for name in parts {
            value = session.interp.member(&value, name)?;
        }
        Some(value)
    }

    /// `:help NAME` for a name of the session: a function's signature and the
    /// comment lines above its definition; for other values, their type.
    fn describe_binding(&self, name: &str, v: &Value) -> String {
        let session = self.session.borrow();
        let sources = &session.interp.linker.sources;
        match v {
            Value::Func(c) => {
                let def = &c.def;
                let Some(file) = sources.get(def.span.file) else {
                    return self.type_of(v);
                };
                let mut text = signature(def, sources);
                let start = file.text[..def.span.start as usize]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let comments: Vec<&str> = file.text[..start]
                    .lines()
                    .rev()
                    .take_while(|l| l.trim_start().starts_with('#'))
                    .map(|l| l.trim_start().trim_start_matches('#').trim())
                    .collect();
                if !comments.is_empty() {
                    text.push_str("\n\n");
                    text.push_str(&comments.into_iter().rev().collect::<Vec<_>>().join("\n"));
                }
                text.push_str(&format!(
                    "\n\ndefined at {}",
                    sources.describe(def.name.span)
                ));
                text
            }
            _ => format!("{name}: {}", self.type_of(v)),
        }
    }

    /// What `:type` prints: the kind, a tensor's shape, a function's signature.
    fn type_of(&self, v: &Value) -> String {
        match v {
            Value::Func(c) => {
                let session = self.session.borrow();
                format!(
                    "{} {}",
                    v.kind(),
                    signature(&c.def, &session.interp.linker.sources)
                )
            }
            Value::Builtin(b) => {
                let session = self.session.borrow();
                let table = session.builtins();
                if table.is_group(*b) {
                    format!("Group of builtins: {}", table.members(*b).join(", "))
                } else {
                    format!("Function {}", table.signature(*b).display())
                }
            }
            Value::Kernel(k) => format!("Kernel {}", kernel_repr(k)),
            Value::Predictor(_) | Value::Model(_) | Value::ModelDecl(_) => repr(v),
            Value::Record(r) => {
                let fields: Vec<String> = r
                    .fields
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", v.describe()))
                    .collect();
                format!("Record {{{}}}", fields.join(", "))
            }
            Value::Str(s) => format!("Str of {} characters", s.chars().count()),
            _ => v.describe(),
        }
    }

    /// `:vars`: the session's names with their kind, shape and memory.
    fn vars(&mut self) {
        let rows: Vec<[String; 4]> = self
            .session
            .borrow()
            .bindings()
            .into_iter()
            .filter(|(n, _)| n.as_ref() != "_")
            .map(|(n, v)| {
                let shape = match &v {
                    Value::Tensor(t) => shape_str(t.shape()),
                    Value::List(items) | Value::Tuple(items) => format!("{} items", items.len()),
                    Value::Record(r) => format!("{} fields", r.fields.len()),
                    _ => String::new(),
                };
                let bytes = memory(&v);
                let memory = if bytes == 0 {
                    String::new()
                } else {
                    human_bytes(bytes)
                };
                [n.to_string(), v.kind().to_string(), shape, memory]
            })
            .collect();
        let peak = crate::host::peak_memory().map_or(String::new(), |b| {
            format!("peak memory of the session: {}", human_bytes(b as usize))
        });
        if rows.is_empty() {
            self.print("no names defined");
            if !peak.is_empty() {
                self.print(&peak);
            }
            return;
        }
        let header = ["name", "kind", "shape", "memory"].map(String::from);
        let mut widths = [0; 4];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let lines: Vec<String> = std::iter::once(&header)
            .chain(&rows)
            .map(|row| {
                let cells: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .enumerate()
                    .map(|(i, (c, w))| {
                        if i == 3 {
                            format!("{c:>w$}")
                        } else {
                            format!("{c:<w$}")
                        }
                    })
                    .collect();
                cells.join("  ").trim_end().to_string()
            })
            .collect();
        self.print(&lines.join("\n"));
        if !peak.is_empty() {
            self.print(&peak);
        }
    }

    /// Write a line to the session's output (where `print` writes; flushed).
    fn print(&self, text: &str) {
        let _ = self.session.borrow_mut().interp.host.print(text);
    }

    fn report(&mut self, diags: &[Diag]) {
        self.failed = true;
        if let Some(cell) = &mut self.cell {
            cell.failure = Some(Failure::Diags(diags.to_vec()));
            return;
        }
        let text = self.session.borrow().render(diags, self.color);
        eprint!("{text}");
        let _ = std::io::stderr().flush();
    }

    /// A mistake in a meta-command: said in one line, like a usage error.
    fn fail(&mut self, message: &str) {
        self.failed = true;
        if let Some(cell) = &mut self.cell {
            cell.failure = Some(Failure::Usage(message.to_string()));
            return;
        }
        eprintln!("error: {message}");
    }
}

/// Ctrl-C raises `flag`; a computation that has not stopped after two more
/// presses (one long factorisation, say) ends the process. Whether the
/// handler could be installed.
fn catch_interrupts(flag: &Arc<AtomicBool>) -> bool {
    static PRESSES: AtomicU32 = AtomicU32::new(0);
    let flag = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if !flag.swap(true, Ordering::Relaxed) {
            PRESSES.store(0, Ordering::Relaxed);
        } else if PRESSES.fetch_add(1, Ordering::Relaxed) >= 1 {
            eprintln!("\nflx: interrupted three times without stopping; leaving");
            std::process::exit(130);
        }
    });
    if let Err(e) = &installed {
        eprintln!("flx: Ctrl-C will end flx, not just a computation ({e})");
    }
    installed.is_ok()
}

fn new_session(options: &Options, interrupt: &Arc<AtomicBool>, interruptible: bool) -> Session {
    let host = StdHost::new(std::io::stdout());
    let host = if interruptible {
        host.interrupted_by(interrupt.clone())
    } else {
        host
    };
    let mut session = Session::new(host, options);
    session.redefine = true;
    session
}

fn find_command(word: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|c| c.0 == word)
        .or_else(|| {
            COMMANDS
                .iter()
                .find(|c| !word.is_empty() && c.0.starts_with(word))
        })
        .map(|c| c.0)
}

/// `name(a, b = 2)`, defaults as written.
fn signature(def: &FnDef, sources: &SourceMap) -> String {
    let params: Vec<String> = def
        .params
        .iter()
        .map(|p| match &p.default {
            Some(d) => {
                let text = sources
                    .get(d.span.file)
                    .and_then(|f| f.text.get(d.span.start as usize..d.span.end as usize));
                format!("{} = {}", p.name.ident.name, text.unwrap_or("…"))
            }
            None => p.name.ident.name.to_string(),
        })
        .collect();
    format!("{}({})", def.name.name, params.join(", "))
}

/// Bytes of tensor data a value holds (shared tensors counted each time).
fn memory(v: &Value) -> usize {
    match v {
        Value::Tensor(t) => t.len() * std::mem::size_of::<f64>(),
        Value::List(items) | Value::Tuple(items) => items.iter().map(memory).sum(),
        Value::Record(r) => r.fields.iter().map(|(_, v)| memory(v)).sum(),
        Value::Predictor(p) => (p.alpha.len() + p.centers.len()) * std::mem::size_of::<f64>(),
        Value::Model(m) => m.params.fields.iter().map(|(_, v)| memory(v)).sum(),
        _ => 0,
    }
}

fn human_bytes(n: usize) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < units.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", units[unit])
    }
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// Where history is kept: `FLX_HISTORY` (empty: nowhere), else
/// `$XDG_STATE_HOME/flx/history`, else `~/.local/state/flx/history`.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FLX_HISTORY") {
        return (!p.is_empty()).then(|| PathBuf::from(p));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|p| Path::new(p).is_absolute())
        .map(PathBuf::from)
        .or_else(|| std::env::home_dir().map(|h| h.join(".local/state")))?;
    Some(state.join("flx/history"))
}

//! The editor grammars, held to flx's own lexer. Three real highlighters —
//! syntect over `editors/sublime/flx.sublime-syntax` (what bat uses), Vim over
//! `editors/vim/`, and vscode-textmate over the VS Code grammar (through
//! vscode-tmgrammar-test) — colour every byte of every example, every stdlib
//! module, the VS Code assertion file and a file that uses every keyword, builtin
//! and geometry name; each byte's class must be the one `flx::highlight::tokens`
//! gives it. The word lists inside the grammars are checked against the
//! interpreter's tables; `FLX_BLESS=1 cargo test --test editors` rewrites them,
//! and the VS Code snapshots of `examples/` and `stdlib/`.
//!
//! Needs `vim` and Node.js on the PATH; the npm tools are installed into
//! `editors/vscode/node_modules` by `npm ci` on first use.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use flx::syntax::lex::{Class, KEYWORDS, MODEL_KEYWORDS};
use flx::syntax::KERNEL_GEOMETRY;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bless() -> bool {
    std::env::var_os("FLX_BLESS").is_some()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flx-editors-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// The builtins, sorted, from the interpreter's table.
/// The builtins' words: `plot`, not its members `plot.line`, ... (after a dot a word is a name).
fn builtins() -> Vec<&'static str> {
    let mut names: Vec<&str> = flx::eval::builtins::TABLE
        .iter()
        .map(|b| b.name)
        .filter(|n| !n.contains('.'))
        .collect();
    names.sort_unstable();
    names
}

/// A file that uses every word with a class of its own, where that class applies.
fn vocabulary() -> String {
    let mut text = String::from("# Every keyword, builtin and geometry name, in context.\n");
    for k in KEYWORDS {
        text.push_str(&format!("{k}\n"));
    }
    for b in builtins() {
        text.push_str(&format!("{b}(x, {b}: 1, r.{b})\n"));
    }
    for g in KERNEL_GEOMETRY {
        text.push_str(&format!("kernel k_{g}(L = 1.0) = {g} / L + {g}\n{g}\n"));
    }
    text.push_str("model m(d) {\n    param w = zeros(d) lr 0.5\n    forward(x) = x @ w\n}\n");
    for k in MODEL_KEYWORDS {
        text.push_str(&format!("{k}\n"));
    }
    text
}

/// Every file the highlighters are compared on: (name, text).
fn corpus() -> &'static [(String, String)] {
    static CORPUS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut files = flx_files(&["examples", "stdlib"]);
        let tokens = "editors/vscode/tests/tokens.flx";
        files.push((tokens.to_string(), read(&root().join(tokens))));
        files.push(("vocabulary.flx".to_string(), vocabulary()));
        files
    })
}

/// The `.flx` files of these folders, sorted: (path from the root, text).
fn flx_files(dirs: &[&str]) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(root().join(dir)).expect("folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "flx") {
                let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
                files.push((name, read(&path)));
            }
        }
    }
    files.sort();
    files
}

/// The lexer's class of each byte; `None` between tokens (spaces, a line's `\`).
fn lexer_classes(text: &str) -> Vec<Option<Class>> {
    let mut classes = vec![None; text.len()];
    for t in flx::highlight::tokens(text) {
        classes[t.start..t.end].fill(Some(t.class));
    }
    classes
}

/// Compares a highlighter's class of each byte with the lexer's; `None` is a
/// byte the highlighter left unscoped. Between tokens, and on line ends (which
/// line-based highlighters do not colour), anything but invalid goes.
fn compare(highlighter: &str, file: &str, text: &str, got: &[Option<Class>]) -> Vec<String> {
    let mut want = lexer_classes(text);
    for (at, byte) in text.bytes().enumerate() {
        if byte == b'\n' {
            want[at] = None;
        }
    }
    let mut errors = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let ok = match want[at] {
            Some(class) => got[at] == Some(class),
            None => got[at] != Some(Class::Invalid),
        };
        if ok {
            at += 1;
            continue;
        }
        // Report the whole run of bytes that differ the same way, once.
        let end = (at..text.len())
            .find(|&i| want[i] != want[at] || got[i] != got[at])
            .unwrap_or(text.len());
        let line = text[..at].matches('\n').count() + 1;
        let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
        errors.push(format!(
            "{highlighter}: {file}:{line}:{col}: `{}` is {:?}, the lexer says {:?}",
            &text[at..end].escape_debug(),
            got[at],
            want[at]
        ));
        at = end;
    }
    errors
}

fn assert_no_errors(errors: Vec<String>) {
    let shown: Vec<&String> = errors.iter().take(40).collect();
    assert!(
        errors.is_empty(),
        "{} difference(s):\n{}",
        errors.len(),
        shown
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The class a TextMate or Sublime scope stack (outermost first) stands for:
/// the innermost scope that says, skipping `meta.*` and the quote and `#` marks
/// (which take their string's or comment's class).
fn scope_class(stack: &[String]) -> Result<Option<Class>, String> {
    const CLASSES: &[(&str, Class)] = &[
        ("comment.", Class::Comment),
        ("string.", Class::String),
        ("constant.character.escape.", Class::Escape),
        ("constant.other.format-spec.", Class::Escape),
        ("punctuation.section.interpolation.", Class::Interpolation),
        ("punctuation.separator.format-spec.", Class::Interpolation),
        ("constant.numeric.", Class::Number),
        ("constant.language.", Class::Constant),
        ("keyword.operator.logical.", Class::Keyword),
        ("keyword.operator.", Class::Operator),
        ("keyword.", Class::Keyword),
        ("storage.type.", Class::Declaration),
        ("entity.name.", Class::Definition),
        ("support.function.", Class::Builtin),
        ("variable.language.", Class::Geometry),
        ("variable.parameter.", Class::Label),
        ("variable.", Class::Name),
        ("punctuation.", Class::Punctuation),
        ("invalid.", Class::Invalid),
    ];
    for scope in stack.iter().rev() {
        if scope.starts_with("meta.")
            || scope.starts_with("punctuation.definition.string.")
            || scope.starts_with("punctuation.definition.comment.")
        {
            continue;
        }
        if scope == "source.flx" {
            return Ok(None);
        }
        return match CLASSES.iter().find(|(prefix, _)| scope.starts_with(prefix)) {
            Some(&(_, class)) => Ok(Some(class)),
            None => Err(format!("scope `{scope}` stands for no class")),
        };
    }
    Ok(None)
}

// ---- Sublime syntax, through syntect ---------------------------------------------

fn syntect_classes(syntax_text: &str, text: &str) -> Result<Vec<Option<Class>>, String> {
    use syntect::parsing::{ParseState, ScopeStack, SyntaxDefinition, SyntaxSetBuilder};
    let def = SyntaxDefinition::load_from_str(syntax_text, true, Some("flx"))
        .map_err(|e| format!("flx.sublime-syntax: {e}"))?;
    let mut builder = SyntaxSetBuilder::new();
    builder.add(def);
    let set = builder.build();
    let syntax = set
        .find_syntax_by_extension("flx")
        .ok_or("no syntax for .flx")?;
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut classes = Vec::with_capacity(text.len());
    let stack_class = |stack: &ScopeStack| {
        let names: Vec<String> = stack.as_slice().iter().map(|s| s.build_string()).collect();
        scope_class(&names)
    };
    for line in text.split_inclusive('\n') {
        let ops = state.parse_line(line, &set).map_err(|e| e.to_string())?;
        let mut at = 0;
        for (pos, op) in ops {
            let class = stack_class(&stack)?;
            classes.extend(std::iter::repeat_n(class, pos - at));
            stack.apply(&op).map_err(|e| format!("{e:?}"))?;
            at = pos;
        }
        let class = stack_class(&stack)?;
        classes.extend(std::iter::repeat_n(class, line.len() - at));
    }
    Ok(classes)
}

#[test]
fn sublime_syntax_agrees_with_the_lexer() {
    let syntax = read(&root().join("editors/sublime/flx.sublime-syntax"));
    let mut errors = Vec::new();
    for (name, text) in corpus() {
        match syntect_classes(&syntax, text) {
            Ok(got) => errors.extend(compare("syntect", name, text, &got)),
            Err(e) => errors.push(format!("syntect: {name}: {e}")),
        }
    }
    assert_no_errors(errors);
}

// ---- Vim -------------------------------------------------------------------------

/// Runs headless Vim with `editors/vim` on its runtime path over `file`; the
/// script `tests/editors/dump.vim` checks filetype detection and the ftplugin,
/// and writes the syntax group of every byte.
fn vim_groups(file: &Path, out: &Path) -> Result<Vec<Vec<String>>, String> {
    let status = Command::new("vim")
        .args(["-Nu", "NONE", "-i", "NONE", "-es", "--cmd"])
        .arg(format!("set rtp^={}", root().join("editors/vim").display()))
        .arg("-S")
        .arg(root().join("tests/editors/dump.vim"))
        .arg(file)
        .env("FLX_SYNTAX_OUT", out)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run vim ({e}); install it (Debian: apt-get install vim)"))?;
    let dump = std::fs::read_to_string(out).unwrap_or_default();
    if !status.success() {
        return Err(format!("vim failed ({status}): {dump}"));
    }
    Ok(dump
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect())
}

/// The class of a Vim syntax group of `editors/vim/syntax/flx.vim`.
fn vim_class(group: &str) -> Result<Option<Class>, String> {
    Ok(Some(match group {
        "" => return Ok(None),
        "flxComment" | "flxTodo" => Class::Comment,
        "flxKeyword" | "flxConditional" | "flxRepeat" | "flxImport" | "flxLogical"
        | "flxModelKeyword" | "flxLr" | "flxForward" => Class::Keyword,
        "flxDeclaration" => Class::Declaration,
        "flxDefinition" | "flxModelName" | "flxKernelName" | "flxParamName" => Class::Definition,
        "flxConstant" => Class::Constant,
        "flxNumber" | "flxFloat" => Class::Number,
        "flxString" => Class::String,
        "flxEscape" | "flxFormatSpec" => Class::Escape,
        "flxInterpDelim" | "flxSpecColon" => Class::Interpolation,
        "flxBuiltin" => Class::Builtin,
        "flxGeometry" => Class::Geometry,
        "flxLabel" => Class::Label,
        "flxName" | "flxField" | "flxModule" => Class::Name,
        "flxOperator" => Class::Operator,
        "flxDelimiter" | "flxAccessor" | "flxInterpPunct" | "flxContinuation" => Class::Punctuation,
        "flxError" | "flxStringError" | "flxInterpError" => Class::Invalid,
        // Regions, seen only on the spaces inside them.
        "flxParens" | "flxBrackets" | "flxBraces" | "flxKernelParens" | "flxKernelBrackets"
        | "flxKernelBraces" | "flxKernel" | "flxModelParams" | "flxModelBody" | "flxParamItem"
        | "flxInterp" => return Ok(None),
        _ => return Err(format!("Vim group `{group}` stands for no class")),
    }))
}

#[test]
fn vim_syntax_agrees_with_the_lexer() {
    let dir = scratch("vim");
    let mut errors = Vec::new();
    for (i, (name, text)) in corpus().iter().enumerate() {
        let file = dir.join(format!("{i}.flx"));
        std::fs::write(&file, text).expect("write");
        let lines = match vim_groups(&file, &dir.join(format!("{i}.groups"))) {
            Ok(lines) => lines,
            Err(e) => panic!("{name}: {e}"),
        };
        let mut got = Vec::with_capacity(text.len());
        for (line, groups) in text
            .split_inclusive('\n')
            .zip(lines.iter().chain(std::iter::repeat(&Vec::new())))
        {
            let body = line.trim_end_matches('\n');
            for b in 0..body.len() {
                match vim_class(groups.get(b).map_or("", String::as_str)) {
                    Ok(class) => got.push(class),
                    Err(e) => {
                        errors.push(format!("vim: {name}: {e}"));
                        got.push(None);
                    }
                }
            }
            got.extend(std::iter::repeat_n(None, line.len() - body.len()));
        }
        errors.extend(compare("vim", name, text, &got));
    }
    assert_no_errors(errors);
}

// ---- VS Code: vscode-textmate through vscode-tmgrammar-test -----------------------

fn vscode_dir() -> PathBuf {
    root().join("editors/vscode")
}

/// Installs the npm tools once (`npm ci`, from the lock file) if they are missing.
fn npm_tools() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        if vscode_dir()
            .join("node_modules/.bin/vscode-tmgrammar-test")
            .exists()
        {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(vscode_dir())
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run npm ({e}); the VS Code grammar tests need Node.js")
            });
        assert!(status.success(), "npm ci in editors/vscode failed");
    });
}

/// Runs an npm tool from `editors/vscode` (where its package.json names the grammar).
fn npx(tool: &str, args: &[&str]) -> (bool, String) {
    npm_tools();
    let out = Command::new(vscode_dir().join("node_modules/.bin").join(tool))
        .args(args)
        .current_dir(vscode_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn textmate_grammar_passes_its_assertions() {
    let (ok, out) = npx("vscode-tmgrammar-test", &["tests/*.flx"]);
    assert!(ok, "vscode-tmgrammar-test failed:\n{out}");
    assert!(out.contains("tests/tokens.flx run successfuly"), "{out}");
}

/// Snapshot files are named after the file they snapshot: `examples-rfm.flx.snap`.
fn snapshot_name(name: &str) -> String {
    format!("{}.snap", name.replace('/', "-"))
}

/// Tokenises `files` with vscode-textmate: the snapshot text of each. With
/// `expected`, compares against those snapshots instead and returns the tool's
/// complaint when they differ.
fn textmate_snapshots(
    dir: &Path,
    files: &[(String, String)],
    expected: Option<&Path>,
) -> Result<Vec<String>, String> {
    for (name, text) in files {
        let copy = dir.join(name.replace('/', "-"));
        std::fs::write(&copy, text).expect("write");
        if let Some(from) = expected {
            let snap = from.join(snapshot_name(name));
            if !snap.exists() {
                return Err(format!("no snapshot {}", snap.display()));
            }
            std::fs::copy(&snap, dir.join(snapshot_name(name))).expect("copy");
        }
    }
    let glob = format!("{}/*.flx", dir.display());
    let mut args = vec![glob.as_str()];
    if expected.is_none() {
        args.push("--updateSnapshot");
    }
    let (ok, out) = npx("vscode-tmgrammar-snap", &args);
    if !ok {
        return Err(out);
    }
    Ok(files
        .iter()
        .map(|(name, _)| read(&dir.join(snapshot_name(name))))
        .collect())
}

/// Reads a vscode-tmgrammar-snap snapshot back into a class per byte of `text`.
/// A source line is `>text`; under it, `#` lines mark a token with `^` under it
/// (columns in UTF-16 units, shifted by the `>`) and list its scopes.
fn snapshot_classes(snapshot: &str, text: &str) -> Result<Vec<Option<Class>>, String> {
    let mut classes = vec![None; text.len()];
    let mut line_start = 0;
    let mut line = "";
    let mut seen_first = false;
    for row in snapshot.lines() {
        if let Some(source) = row.strip_prefix('>') {
            if seen_first {
                line_start += line.len() + 1;
            }
            seen_first = true;
            line = source;
            if text.get(line_start..line_start + line.len()) != Some(line) {
                return Err(format!("snapshot line `{line}` is not in the file"));
            }
        } else if let Some(marks) = row.strip_prefix('#') {
            let first = marks.find('^').ok_or("a mark line without ^")?;
            let count = marks[first..].chars().take_while(|&c| c == '^').count();
            let scopes: Vec<String> = marks[first + count..]
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let class = scope_class(&scopes)?;
            // UTF-16 columns to byte offsets within the line.
            let (start, end) = (
                utf16_to_byte(line, first),
                utf16_to_byte(line, first + count),
            );
            classes[line_start + start..line_start + end].fill(class);
        }
    }
    Ok(classes)
}

fn utf16_to_byte(line: &str, units: usize) -> usize {
    let mut seen = 0;
    for (i, c) in line.char_indices() {
        if seen >= units {
            return i;
        }
        seen += c.len_utf16();
    }
    line.len()
}

#[test]
fn textmate_grammar_agrees_with_the_lexer() {
    let snapshots =
        textmate_snapshots(&scratch("tm-tokens"), corpus(), None).unwrap_or_else(|e| panic!("{e}"));
    let mut errors = Vec::new();
    for ((name, text), snapshot) in corpus().iter().zip(&snapshots) {
        match snapshot_classes(snapshot, text) {
            Ok(got) => errors.extend(compare("vscode-textmate", name, text, &got)),
            Err(e) => errors.push(format!("vscode-textmate: {name}: {e}")),
        }
    }
    assert_no_errors(errors);
}

/// Snapshots of every example and stdlib module, committed under
/// `editors/vscode/tests/snapshots/`: a grammar change shows up as a diff there.
#[test]
fn textmate_snapshots_are_current() {
    let files = flx_files(&["examples", "stdlib"]);
    let committed = vscode_dir().join("tests/snapshots");
    if bless() {
        let fresh = textmate_snapshots(&scratch("tm-bless"), &files, None)
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_dir_all(&committed);
        std::fs::create_dir_all(&committed).expect("snapshot folder");
        for ((name, _), snap) in files.iter().zip(fresh) {
            std::fs::write(committed.join(snapshot_name(name)), snap).expect("write snapshot");
        }
        return;
    }
    let wanted: BTreeSet<String> = files.iter().map(|(name, _)| snapshot_name(name)).collect();
    let present: BTreeSet<String> = std::fs::read_dir(&committed)
        .map(|d| {
            d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        present, wanted,
        "snapshots and files differ: run `FLX_BLESS=1 cargo test --test editors`"
    );
    if let Err(e) = textmate_snapshots(&scratch("tm-check"), &files, Some(&committed)) {
        panic!("the VS Code grammar's snapshots changed; if that is intended, run `FLX_BLESS=1 cargo test --test editors`:\n{e}");
    }
}

#[test]
fn vscode_extension_packages_into_a_vsix() {
    let dir = scratch("vsix");
    let vsix = dir.join("flx.vsix");
    let out = vsix.to_string_lossy().into_owned();
    let (ok, log) = npx(
        "vsce",
        &[
            "package",
            "--allow-missing-repository",
            "--skip-license",
            "--out",
            &out,
        ],
    );
    assert!(ok, "vsce package failed:\n{log}");
    // A .vsix is a zip; the grammar and the language configuration must be in it.
    let bytes = std::fs::read(&vsix).expect("the .vsix");
    let has = |name: &str| bytes.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(has("extension/syntaxes/flx.tmLanguage.json"), "{log}");
    assert!(has("extension/language-configuration.json"), "{log}");
    assert!(
        !has("node_modules"),
        "node_modules must stay out of the .vsix"
    );
}

// ---- one source of truth for the word lists --------------------------------------

/// Where each grammar keeps its builtin list, and how to write one.
struct WordList {
    file: &'static str,
    /// The text just before the list and just after it.
    before: &'static str,
    after: &'static str,
    sep: &'static str,
}

const BUILTIN_LISTS: &[WordList] = &[
    WordList {
        file: "editors/vscode/syntaxes/flx.tmLanguage.json",
        before:
            "\"name\": \"support.function.builtin.flx\",\n      \"match\": \"(?<![A-Za-z0-9_])(?:",
        after: ")(?![A-Za-z0-9_])\"",
        sep: "|",
    },
    WordList {
        file: "editors/sublime/flx.sublime-syntax",
        before: "  builtin: '(?:",
        after: ")'",
        sep: "|",
    },
    WordList {
        file: "editors/vim/syntax/flx.vim",
        before: "syn match flxBuiltin /\\w\\@<!\\%(",
        after: "\\)\\w\\@!/",
        sep: "\\|",
    },
];

#[test]
fn grammar_builtin_lists_are_the_interpreters() {
    let want = builtins().join("|");
    let mut stale = Vec::new();
    for list in BUILTIN_LISTS {
        let path = root().join(list.file);
        let text = read(&path);
        let start = text
            .find(list.before)
            .unwrap_or_else(|| panic!("{}: no builtin list", list.file))
            + list.before.len();
        let end = start
            + text[start..]
                .find(list.after)
                .expect("end of the builtin list");
        let have = text[start..end].replace(list.sep, "|");
        if have != want {
            if bless() {
                let fresh = builtins().join(list.sep);
                std::fs::write(&path, format!("{}{fresh}{}", &text[..start], &text[end..]))
                    .expect("write");
            } else {
                stale.push(list.file);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "the builtin list in {stale:?} is not the interpreter's: run `FLX_BLESS=1 cargo test --test editors`"
    );
}

//! The layers of `src/` import one way. This test reads every source file,
//! finds what it refers to in other top-level modules (`use crate::x`,
//! `crate::x::...` paths, `super::` reaching out of its module), and fails
//! on any reference the table below does not allow. The table is the
//! architecture: ARCHITECTURE.md shows it, and a change to it is a change
//! to the design.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of the library and what it may import, lowest
/// layers first; `lib` is the crate root (`src/lib.rs`), which may import
/// anything. No module may import one that is listed after it, so no two
/// modules can import each other.
const LAYERS: &[(&str, &[&str])] = &[
    ("diag", &[]),
    ("format", &[]),
    ("prim", &[]),
    ("linalg", &[]),
    ("progress", &[]),
    ("signature", &["format"]),
    ("syntax", &["diag", "prim"]),
    ("tensor", &["format", "linalg", "prim"]),
    ("ad", &["linalg", "prim", "tensor"]),
    ("jit", &["prim", "signature", "syntax"]),
    (
        "kernel",
        &[
            "diag",
            "jit",
            "linalg",
            "prim",
            "signature",
            "syntax",
            "tensor",
        ],
    ),
    ("check", &["diag", "kernel", "signature", "syntax"]),
    ("plot", &[]),
    ("outputs", &["format"]),
    ("host", &["outputs", "progress"]),
    (
        "eval",
        &[
            "ad",
            "check",
            "diag",
            "format",
            "host",
            "jit",
            "kernel",
            "linalg",
            "outputs",
            "plot",
            "prim",
            "progress",
            "signature",
            "syntax",
            "tensor",
        ],
    ),
    ("highlight", &["eval", "syntax"]),
    ("sweep", &["lib", "outputs"]),
    (
        "repl",
        &[
            "check",
            "diag",
            "eval",
            "format",
            "highlight",
            "host",
            "lib",
            "signature",
            "syntax",
        ],
    ),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src/`: `src/eval/builtins/tensor.rs` is
/// `["eval", "builtins", "tensor"]`, `src/eval/mod.rs` is `["eval"]`,
/// `src/lib.rs` is `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("below src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// Code without comments and string literals, so that neither counts.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            // A char literal such as '"' must not open a string.
            '\'' => {
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("\\") || rest.chars().nth(1) == Some('\'') {
                    let n = if rest.starts_with("\\") { 3 } else { 2 };
                    for _ in 0..n {
                        chars.next();
                    }
                    out.push_str("' '");
                } else {
                    out.push(c);
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules (or `lib` for items of the crate root) that a
/// file refers to, with a line of each reference.
fn references(src: &Path, file: &Path) -> Vec<(String, usize)> {
    let me = module_path(src, file);
    let text = code_only(&std::fs::read_to_string(file).expect("readable"));
    let top_level: BTreeSet<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    let target = |name: &str| {
        if top_level.contains(name) {
            name.to_string()
        } else {
            "lib".to_string()
        }
    };
    let mut out = Vec::new();
    // Inline modules (`mod tests { ... }`): the brace depth each opened at.
    let (mut braces, mut inline): (usize, Vec<usize>) = (0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("pub ");
        if trimmed.starts_with("mod ") && trimmed.trim_end().ends_with('{') {
            inline.push(braces);
        }
        braces += line.matches('{').count();
        braces = braces.saturating_sub(line.matches('}').count());
        while inline.last().is_some_and(|&d| braces <= d) {
            inline.pop();
        }
        let nesting = me.len() + inline.len();
        let mut rest = line;
        while let Some(k) = rest.find("crate::") {
            let after = &rest[k + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `use crate::{a, b::c}`: the first name of each item.
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    let name = ident_at(item.trim());
                    if !name.is_empty() {
                        out.push((target(name), n + 1));
                    }
                }
            } else {
                out.push((target(ident_at(after)), n + 1));
            }
            rest = after;
        }
        // `super::` chains that climb out of the file's top-level module.
        let mut rest = line;
        while let Some(k) = rest.find("super::") {
            let preceded =
                rest[..k].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
            let mut after = &rest[k..];
            let mut depth = 0;
            while let Some(a) = after.strip_prefix("super::") {
                depth += 1;
                after = a;
            }
            if !preceded && depth >= nesting {
                out.push((target(ident_at(after)), n + 1));
            }
            rest = &rest[k + depth * "super::".len()..];
        }
    }
    out
}

#[test]
fn layers_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.retain(|f| f.file_name().is_some_and(|n| n != "main.rs"));
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let me = module_path(&src, file);
        let Some(top) = me.first() else {
            continue; // the crate root may import anything
        };
        let Some(may) = allowed.get(top.as_str()) else {
            errors.push(format!(
                "{}: module `{top}` is not in LAYERS",
                file.display()
            ));
            continue;
        };
        seen.insert(top.clone());
        for (to, line) in references(&src, file) {
            if &to != top && !may.contains(&to.as_str()) {
                errors.push(format!(
                    "{}:{line}: `{top}` may not import `{to}`",
                    file.strip_prefix(&src).expect("below src/").display()
                ));
            }
        }
    }
    for (m, _) in LAYERS {
        assert!(seen.contains(*m), "LAYERS names `{m}`, which has no source");
    }
    assert!(
        errors.is_empty(),
        "imports against the layers:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_table_itself_points_down() {
    // A module may only import modules listed before it: no cycles.
    for (i, (m, may)) in LAYERS.iter().enumerate() {
        for dep in *may {
            let below = LAYERS[..i].iter().any(|(n, _)| n == dep) || *dep == "lib";
            assert!(below, "`{m}` imports `{dep}`, which is not below it");
        }
    }
}

#[test]
fn references_are_found_in_every_form() {
    let dir = std::env::temp_dir().join(format!("flx-layers-{}", std::process::id()));
    let file = dir.join("tensor").join("mod.rs");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        "use crate::eval::value::Value;\nuse crate::{linalg, prim::math};\nfn f() { crate::syntax::x(); super::Session::new(); }\n// crate::check in a comment\nconst S: &str = \"crate::repl\";\nconst C: char = '\"';\nfn g() { crate::jit::y() }\n",
    )
    .unwrap();
    let found: Vec<(String, usize)> = references(&dir, &file);
    std::fs::remove_dir_all(&dir).unwrap();
    let names: Vec<&str> = found.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(names, ["eval", "linalg", "prim", "syntax", "lib", "jit"]);
}

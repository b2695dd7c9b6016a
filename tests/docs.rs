//! The documentation stays true to the code:
//! - every `flx` code block in docs/language.md and README.md runs without error;
//! - docs/builtins.md is exactly what the builtin table generates
//!   (`FLX_BLESS=1 cargo test --test docs` rewrites it).

use std::path::Path;

fn flx_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```flx") => current = Some((i + 2, String::new())),
            (Some(_), l) if l.starts_with("```") => {
                blocks.push(current.take().expect("open block"))
            }
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

fn run_blocks(doc: &str) {
    let text = std::fs::read_to_string(doc).expect("doc exists");
    let blocks = flx_blocks(&text);
    assert!(!blocks.is_empty(), "{doc} has no flx blocks");
    flx::set_threads(2);
    let mut failures = Vec::new();
    for (line, code) in blocks {
        let doc = doc.to_string();
        let result = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || {
                let options = flx::Options {
                    seed: 0,
                    step_limit: Some(100_000_000),
                    no_jit: false,
                };
                let mut s = flx::Session::new(flx::StdHost::new(std::io::sink()), &options);
                let name = format!("{doc}:{line}");
                match s
                    .run_source(&name, &code, Path::new("."))
                    .and_then(|_| s.call_main(Vec::new()))
                {
                    Ok(_) => None,
                    Err(d) => Some(s.render(&d, false)),
                }
            })
            .expect("spawn")
            .join()
            .expect("no panic");
        if let Some(err) = result {
            failures.push(err);
        }
    }
    assert!(
        failures.is_empty(),
        "code blocks in {doc} failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn language_reference_examples_run() {
    run_blocks("docs/language.md");
}

#[test]
fn readme_examples_run() {
    run_blocks("README.md");
}

/// The README's Rust block is the crate docs' example, which `cargo test`
/// runs as a doctest.
#[test]
fn readme_embedding_example_is_the_tested_one() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let block = readme
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a rust block in README.md");
    let lib = std::fs::read_to_string("src/lib.rs").expect("src/lib.rs");
    let doc: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let example = doc
        .split("```")
        .nth(1)
        .expect("an example in the crate docs");
    assert_eq!(
        block.trim(),
        example.trim(),
        "README.md and src/lib.rs disagree"
    );
}

#[test]
fn builtin_reference_is_current() {
    let generated = flx::eval::builtins::reference_markdown();
    let path = Path::new("docs/builtins.md");
    if std::env::var_os("FLX_BLESS").is_some() {
        std::fs::write(path, &generated).expect("write docs/builtins.md");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/builtins.md is out of date: run `FLX_BLESS=1 cargo test --test docs`"
    );
}

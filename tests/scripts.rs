//! The script-test harness: every `tests/scripts/**/*.flx` and every
//! `examples/*.flx` is one test.
//!
//! Beside `NAME.flx`:
//! - `NAME.out`: the exact standard output (required for examples, whose
//!   snapshots live in `tests/examples/`);
//! - `NAME.err`: the rendered diagnostic (no colour, fixed width) the run must
//!   fail with. Without it the run must succeed.
//!
//! A script that defines `proc main` has it called as `flx run` does: with
//! no overrides, or with those of `NAME.args` beside its expected output
//! (`key=value` words, as on the command line: an example too large for CI
//! runs there at a smaller size), with an output folder of its own under Cargo's
//! `CARGO_TARGET_TMPDIR`, shown as `$OUT` in its output. `FLX_BLESS=1 cargo test --test scripts` rewrites the
//! expected files from the actual results.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};

mod common;
use common::Captured;
#[path = "common/figure.rs"]
mod figure;
use figure::check_figure;

/// Run a script as `flx run --out DIR` would; returns (stdout, rendered
/// diagnostics). DIR, where the script's metrics and figures land, is
/// written `$OUT` in the output, and every figure there must be well-formed.
fn run_script(path: &Path, args: &[String]) -> (String, String) {
    let out = Captured::default();
    let options = flx::Options {
        seed: 0,
        step_limit: Some(2_000_000_000),
        no_jit: false,
    };
    let mut session = flx::Session::new(flx::StdHost::new(out.clone()), &options);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("script-outputs")
        .join(path.with_extension(""));
    let _ = std::fs::remove_dir_all(&dir);
    session.open_outputs(&dir).expect("an output folder");
    let result = session.run_file(path).and_then(|_| {
        let overrides = session
            .parse_overrides(args)
            .expect("the .args file's overrides");
        session.call_main(overrides)
    });
    let shown = dir.display().to_string();
    let err = match result {
        Ok(_) => String::new(),
        Err(diags) => session.render(&diags, false).replace(&shown, "$OUT"),
    };
    for f in std::fs::read_dir(&dir)
        .expect("the output folder")
        .flatten()
    {
        if f.path()
            .extension()
            .is_some_and(|e| e == "svg" || e == "png")
        {
            check_figure(&f.path(), None);
        }
    }
    let stdout = String::from_utf8_lossy(&out.0.borrow())
        .to_string()
        .replace(&shown, "$OUT");
    (stdout, err)
}

fn check_file(expected: &Path, actual: &str, what: &str, bless: bool) -> Result<(), String> {
    if bless {
        if actual.is_empty() && what == "stdout" {
            let _ = std::fs::remove_file(expected);
        } else if !actual.is_empty() {
            std::fs::write(expected, actual).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    let want = std::fs::read_to_string(expected).unwrap_or_default();
    if want == actual {
        return Ok(());
    }
    Err(format!(
        "{what} differs from {}\n{}",
        expected.display(),
        diff(&want, actual)
    ))
}

fn diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i).copied(), g.get(i).copied());
        if a != b {
            out.push_str(&format!(
                "  line {}:\n    expected: {}\n    actual:   {}\n",
                i + 1,
                a.unwrap_or("<none>"),
                b.unwrap_or("<none>")
            ));
        }
    }
    out
}

fn script_test(path: PathBuf, expected_dir: Option<PathBuf>) -> Result<(), Failed> {
    let bless = std::env::var_os("FLX_BLESS").is_some();
    let stem = path
        .file_stem()
        .expect("a file name")
        .to_string_lossy()
        .to_string();
    let dir = expected_dir.unwrap_or_else(|| path.parent().expect("a folder").to_path_buf());
    let args: Vec<String> = std::fs::read_to_string(dir.join(format!("{stem}.args")))
        .map(|a| a.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    // The interpreter recurses over the syntax tree: give it the stack `flx` has.
    let p = path.clone();
    let (stdout, err) = std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || run_script(&p, &args))
        .expect("spawn")
        .join()
        .map_err(|_| Failed::from("the interpreter panicked"))?;
    let out_file = dir.join(format!("{stem}.out"));
    let err_file = dir.join(format!("{stem}.err"));
    let mut problems = Vec::new();
    if let Err(e) = check_file(&out_file, &stdout, "stdout", bless) {
        problems.push(e);
    }
    if err_file.exists() || (bless && !err.is_empty()) {
        if let Err(e) = check_file(&err_file, &err, "diagnostic", bless) {
            problems.push(e);
        }
    } else if !err.is_empty() {
        problems.push(format!("the script failed:\n{err}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "flx")
            && !p.components().any(|c| c.as_os_str() == "modules")
        {
            out.push(p);
        }
    }
}

fn main() {
    let mut args = Arguments::from_args();
    // Scripts share the process-wide thread pools (2 threads, as CI's cores):
    // two heavy scripts at once oversubscribe them and run 5× slower than
    // one after the other, so scripts run one at a time unless told otherwise.
    args.test_threads.get_or_insert(1);
    flx::set_threads(2);
    let mut trials = Vec::new();
    let mut scripts = Vec::new();
    collect(Path::new("tests/scripts"), &mut scripts);
    for p in scripts {
        let name = p.strip_prefix("tests/").unwrap_or(&p).display().to_string();
        trials.push(Trial::test(name, move || script_test(p, None)));
    }
    let mut examples = Vec::new();
    collect(Path::new("examples"), &mut examples);
    for p in examples {
        let name = p.display().to_string();
        // Examples run at full size; their snapshots live in tests/examples/.
        trials.push(Trial::test(name, move || {
            script_test(p, Some(PathBuf::from("tests/examples")))
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}

//! The `flx` binary end to end: exit codes, `flx check`, overrides and their types, threads, `--no-jit`,
//! `flx highlight`.

use std::process::{Command, Output};

#[path = "common/process.rs"]
mod process;
use process::{flx, text};

/// `flx [options] run FILE [overrides]` with a fresh output folder, whose
/// path is shown as `$OUT` in the standard output returned (as the script
/// harness shows it); `run` is the file and its overrides.
fn run_with_out(options: &[&str], run: &[&str]) -> (Output, String) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out_dir = dir.path().to_str().expect("a UTF-8 path");
    let mut args = options.to_vec();
    args.push("run");
    args.extend(run);
    args.extend(["--out", out_dir]);
    let o = flx(&args);
    let stdout = text(&o.stdout).replace(out_dir, "$OUT");
    (o, stdout)
}

#[test]
fn check_reports_every_mistake_with_line_and_column() {
    let out = flx(&["check", "tests/scripts/errors/three_mistakes.flx"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for at in [
        "three_mistakes.flx:3:9",
        "three_mistakes.flx:5:29",
        "three_mistakes.flx:6:1",
    ] {
        assert!(err.contains(at), "missing {at} in:\n{err}");
    }
    assert!(err.contains("3 errors found"), "{err}");
    assert!(out.stdout.is_empty(), "check must not run the script");
}

#[test]
fn check_accepts_a_good_file_without_running_it() {
    let out = flx(&["check", "examples/basics.flx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn run_calls_main_with_overrides() {
    let out = flx(&[
        "run",
        "tests/scripts/core/proc_main.flx",
        "iters=2",
        "scale=10",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("         1          20"), "{stdout}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
}

#[test]
fn usage_errors_exit_2() {
    let unknown = flx(&["run", "tests/scripts/core/proc_main.flx", "iter=2"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("did you mean `iters`?"));
    let malformed = flx(&["run", "tests/scripts/core/proc_main.flx", "iters"]);
    assert_eq!(malformed.status.code(), Some(2));
    assert_eq!(flx(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn overrides_are_checked_against_the_type_of_each_default() {
    let script = "tests/cli/typed_main.flx";
    for (arg, words) in [
        ("n=2.5", ["`n` is an Int", "`2.5` is a Float"]),
        ("n=abc", ["`n` is an Int", "`abc` is a Str"]),
        ("lr=x", ["`lr` is a Float", "`x` is a Str"]),
        ("fast=1", ["`fast` is a Bool", "`1` is an Int"]),
    ] {
        let out = flx(&["run", script, arg]);
        assert_eq!(out.status.code(), Some(2), "{arg}");
        let err = text(&out.stderr);
        assert!(words.iter().all(|w| err.contains(w)), "{arg}: {err}");
        assert!(out.stdout.is_empty(), "{arg}: nothing runs");
    }
    // A Float takes an Int, a Str a bare word or a number, none anything.
    let out = flx(&["run", script, "lr=3", "name=7", "extra=2.5", "n=-4"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "-4 3.0 7 false 2.5\n");
    // A sweep checks every value of every axis before it starts.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out_dir = dir.path().join("sweep");
    let sweep = flx(&[
        "sweep",
        script,
        "n=1,2.5",
        "--out",
        out_dir.to_str().expect("UTF-8"),
    ]);
    assert_eq!(sweep.status.code(), Some(2));
    assert!(text(&sweep.stderr).contains("`2.5` is a Float"));
    assert!(!out_dir.exists(), "nothing ran");
}

#[test]
fn script_errors_exit_1_without_a_backtrace() {
    let out = flx(&["run", "tests/scripts/errors/call_trace.flx"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("flx::shape::matmul") && err.contains("in `gram`, called at"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    let missing = flx(&["run", "no/such/file.flx"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("cannot read no/such/file.flx"));
}

#[test]
fn figures_do_not_depend_on_the_thread_count() {
    for example in [
        "examples/basics.flx",
        "examples/rfm.flx",
        "examples/linrfm.flx",
    ] {
        let (one, one_out) = run_with_out(&["--threads", "1"], &[example]);
        let (_, two_out) = run_with_out(&["--threads", "2"], &[example]);
        assert_eq!(one.status.code(), Some(0), "{example}");
        assert_eq!(one_out, two_out, "{example}");
    }
}

#[test]
fn seed_flag_changes_the_session_generator_only() {
    let script = "tests/scripts/core/seeded.flx";
    let a = text(&flx(&["--seed", "1", "run", script]).stdout);
    let b = text(&flx(&["--seed", "2", "run", script]).stdout);
    let (a1, a2) = a.split_once('\n').expect("two lines");
    let (b1, b2) = b.split_once('\n').expect("two lines");
    assert_eq!(a1, b1, "a call with seed: ignores --seed");
    assert_ne!(a2, b2, "calls without seed: follow --seed");
}

#[test]
fn every_example_is_the_same_without_the_jit() {
    // The script harness checks each example's output (with the JIT) against
    // tests/examples/; here the interpreter alone must print the same.
    for entry in std::fs::read_dir("examples").expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "flx") {
            continue;
        }
        let stem = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        let want = std::fs::read_to_string(format!("tests/examples/{stem}.out")).expect("snapshot");
        // The size the script harness runs it at (tests/scripts.rs).
        let args =
            std::fs::read_to_string(format!("tests/examples/{stem}.args")).unwrap_or_default();
        let file = path.display().to_string();
        let mut run = vec![file.as_str()];
        run.extend(args.split_whitespace());
        let (out, stdout) = run_with_out(&["--no-jit"], &run);
        assert_eq!(out.status.code(), Some(0), "{stem}");
        assert_eq!(stdout, want, "{stem} differs without the JIT");
    }
    // The environment variable does the same as the flag.
    let env = Command::new(env!("CARGO_BIN_EXE_flx"))
        .env("FLX_NO_JIT", "1")
        .args(["run", "examples/linrfm.flx"])
        .output()
        .expect("flx runs");
    let want = std::fs::read_to_string("tests/examples/linrfm.out").expect("snapshot");
    assert_eq!(text(&env.stdout), want);
}

#[test]
fn highlight_colours_by_token_class() {
    let out = Command::new(env!("CARGO_BIN_EXE_flx"))
        .args(["highlight", "stdlib/rfm.flx"])
        .env_remove("NO_COLOR")
        .output()
        .expect("flx runs");
    assert!(out.status.success());
    let shown = text(&out.stdout);
    // Declaration, definition, builtin, geometry, number: each in its colour.
    assert!(
        shown.contains("\x1b[1;35mkernel\x1b[0m \x1b[1;34mlaplace\x1b[0m(L = \x1b[36m10.0\x1b[0m) = \x1b[34mexp\x1b[0m(-\x1b[3;36mdist\x1b[0m / L)"),
        "{shown}"
    );
    // Without the escapes it is the file, byte for byte.
    let plain = flx(&["highlight", "stdlib/rfm.flx"]);
    assert_eq!(
        text(&plain.stdout),
        std::fs::read_to_string("stdlib/rfm.flx").unwrap()
    );
}

#[test]
fn highlight_html_is_a_page_of_classed_spans() {
    let out = flx(&["highlight", "--html", "examples/linrfm.flx"]);
    assert!(out.status.success());
    let page = text(&out.stdout);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("<span class=\"flx-declaration\">kernel</span> <span class=\"flx-definition\">linear</span>() = <span class=\"flx-geometry\">dot</span>"), "{page}");
    assert!(page.contains("&lt;-"), "text is escaped: {page}");
    let missing = flx(&["highlight", "no/such.flx"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("cannot read no/such.flx"));
}

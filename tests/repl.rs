//! The REPL end to end: the real `flx` binary on a pseudo-terminal (rexpect),
//! as a person would type at it, and with stdin piped from a file.

use std::path::{Path, PathBuf};
use std::process::Command;

use rexpect::session::{spawn_with_options, Options, PtySession};

#[path = "common/process.rs"]
mod process;
use process::flx_piped;

const PROMPT: &str = "flx> ";

/// A fresh folder for one test's history file.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flx-repl-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// `flx` on a pseudo-terminal, at its first prompt. `color: false` sets NO_COLOR;
/// escape codes are stripped from what is read back unless `raw`.
/// `flx` without colour, with a history of its own that starts empty.
fn start_fresh(test: &str) -> PtySession {
    start(&scratch(test).join("history"), false, false)
}

fn start(history: &Path, color: bool, raw: bool) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flx"));
    cmd.env("FLX_HISTORY", history);
    start_command(cmd, color, raw)
}

fn start_command(mut cmd: Command, color: bool, raw: bool) -> PtySession {
    cmd.env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !color {
        cmd.env("NO_COLOR", "1");
    }
    let options = Options::new()
        .timeout_ms(Some(60_000))
        .strip_ansi_escape_codes(!raw);
    let mut p = spawn_with_options(cmd, options).expect("spawn flx on a pty");
    p.exp_string(PROMPT).expect("first prompt");
    p
}

/// Type `text` and wait for what it should print, then for the next prompt.
fn enter(p: &mut PtySession, text: &str, expect: &str) {
    p.send_line(text).expect("send");
    p.flush().expect("flush");
    p.exp_string(expect)
        .unwrap_or_else(|e| panic!("after {text:?}, expected {expect:?}: {e}"));
    p.exp_string(PROMPT).expect("prompt");
}

fn keys(p: &mut PtySession, text: &str) {
    p.send(text).expect("send");
    p.flush().expect("flush");
}

/// Ctrl-C at the prompt: the line is dropped and a new prompt comes (input
/// typed before it appears may be dropped too, so wait for it).
fn cancel_line(p: &mut PtySession) {
    p.send_control('c').expect("Ctrl-C");
    p.exp_string("\n").expect("a new line");
    p.exp_string(PROMPT).expect("prompt");
}

fn quit(mut p: PtySession) {
    p.send_control('d').expect("Ctrl-D");
    p.exp_eof().expect("flx leaves on Ctrl-D");
}

#[test]
fn multi_line_input_runs_once_the_brackets_close() {
    let mut p = start_fresh("multi");
    // An open parameter list, then an operator at the end of a line: both go on.
    keys(&mut p, "fn add(a,\n");
    keys(&mut p, "       b) = a +\n");
    enter(&mut p, "  b", PROMPT);
    enter(&mut p, "add(40, 2)", "42");
    enter(&mut p, "let s = \"two\nlines\"", "");
    enter(&mut p, "len(s)", "9");
    quit(p);
}

#[test]
fn tab_completes_builtins_names_and_record_fields() {
    let mut p = start_fresh("complete");
    keys(&mut p, "linsp\t");
    enter(&mut p, "(0, 1, n: 3)", "[0.  0.5 1. ]");
    enter(
        &mut p,
        "let results = {train_error: 1234, test_error: 5}",
        "",
    );
    keys(&mut p, "results.tra\t");
    enter(&mut p, " * 2", "2468");
    keys(&mut p, "resu\t");
    enter(&mut p, ".test_e\t + 1", "6");
    // File paths inside strings (from the working directory, the crate here).
    // Members of a group of builtins.
    keys(&mut p, "plot.heat\t");
    enter(&mut p, "(eye(2))", "plot1.svg");
    keys(&mut p, "len(\"examp\t");
    keys(&mut p, "rf\t");
    enter(&mut p, "\")", "16");
    quit(p);
}

#[test]
fn history_survives_a_restart() {
    let dir = scratch("history");
    let history = dir.join("history");
    let mut p = start(&history, false, false);
    enter(&mut p, "6 * 7001", "42006");
    quit(p);
    let saved = std::fs::read_to_string(&history).expect("history file written");
    assert!(saved.contains("6 * 7001"), "{saved}");
    let mut p = start(&history, false, false);
    keys(&mut p, "\x1b[A"); // Up: the last input comes back
    enter(&mut p, "", "42006");
    quit(p);

    // Without FLX_HISTORY, history goes to $XDG_STATE_HOME/flx/history.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flx"));
    cmd.env_remove("FLX_HISTORY").env("XDG_STATE_HOME", &dir);
    let mut p = start_command(cmd, false, false);
    enter(&mut p, "7 * 6", "42");
    quit(p);
    let saved = std::fs::read_to_string(dir.join("flx/history")).expect("XDG history written");
    assert!(saved.contains("7 * 6"), "{saved}");
}

#[test]
fn help_type_and_time() {
    let mut p = start_fresh("meta");
    enter(&mut p, ":help linspace", "evenly spaced values");
    enter(&mut p, ":type randn(3, 4)", "Tensor (3, 4)");
    enter(&mut p, "fn f(x, y = 2) = x * y", "");
    enter(&mut p, ":type f", "Function f(x, y = 2)");
    enter(&mut p, ":time sum(ones(1000))", "time: ");
    enter(&mut p, "_", "1000.0");
    enter(&mut p, ":vars", "f     Function");
    enter(&mut p, ":vars", "peak memory of the session: ");
    quit(p);
}

#[test]
fn an_error_is_reported_and_the_next_input_works() {
    let mut p = start_fresh("error");
    enter(&mut p, "let x = 20", "");
    enter(&mut p, "x + nope", "unknown name `nope`");
    enter(&mut p, "x + 1", "21");
    quit(p);
}

#[test]
fn ctrl_c_interrupts_a_running_loop_and_keeps_the_session() {
    let mut p = start_fresh("interrupt");
    // Ctrl-C at the prompt drops the line being typed.
    keys(&mut p, "this is not run");
    p.exp_string("not run").expect("echo");
    cancel_line(&mut p);
    enter(&mut p, "let i = 0", "");
    // The interpreter's loop, then a compiled `fn`'s.
    keys(&mut p, "while true { i += 1 }\n");
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send_control('c').expect("Ctrl-C");
    p.exp_string("interrupted").expect("the loop stops");
    p.exp_string(PROMPT).expect("prompt");
    enter(&mut p, "i > 0", "true");
    enter(
        &mut p,
        "fn spin() { let s = 0; while true { s += 1 }; s }",
        "",
    );
    keys(&mut p, "spin()\n");
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send_control('c').expect("Ctrl-C");
    p.exp_string("interrupted")
        .expect("the compiled loop stops");
    p.exp_string(PROMPT).expect("prompt");
    enter(&mut p, "i + 1 > 1", "true");
    quit(p);
}

#[test]
fn input_is_highlighted_and_hints_from_history_are_dimmed() {
    let dir = scratch("colour");
    let history = dir.join("history");
    std::fs::write(&history, "#V2\nlet alpha = 1\n").expect("seed history");
    let mut p = start(&history, true, true);
    keys(&mut p, "let al");
    // `let` as a keyword (magenta); the rest of the old input as a dim hint.
    p.exp_string("\x1b[35mlet\x1b[0m").expect("keyword colour");
    p.exp_string("\x1b[2mpha = 1\x1b[0m").expect("dimmed hint");
    cancel_line(&mut p);
    quit(p);
}

/// Run `flx` with `input` on stdin; (stdout, stderr, exit code).
fn piped(input: &str, env: &[(&str, &str)]) -> (String, String, i32) {
    piped_with_args(&[], input, env)
}

fn piped_with_args(args: &[&str], input: &str, env: &[(&str, &str)]) -> (String, String, i32) {
    let out = flx_piped(args, input, env);
    (
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
        out.status.code().expect("exit code"),
    )
}

#[test]
fn piped_stdin_runs_each_input_in_order_without_prompt_or_colour() {
    let script = "\
let X = eye(2) * 3
X @ ones(2)
fn twice(x) {
    2 * x
}
twice(_)
missing + 1
print(\"still running\")
:type X
";
    let (out, err, code) = piped(script, &[]);
    assert_eq!(
        out, "[3. 3.]\n[6. 6.]\nstill running\nTensor (2, 2)\n",
        "stderr: {err}"
    );
    assert_eq!(code, 1, "an input failed");
    assert!(err.contains("unknown name `missing`"), "{err}");
    assert!(
        err.contains("<stdin>:7:1"),
        "lines are counted over the whole input: {err}"
    );
    assert!(
        !err.contains('\x1b') && !out.contains('\x1b'),
        "no colour codes"
    );

    let (out, err, code) = piped("1 +\n  2\n:quit\nnever_run\n", &[("NO_COLOR", "1")]);
    assert_eq!((out.as_str(), err.as_str(), code), ("3\n", "", 0));
}

#[test]
fn repl_with_a_file_runs_it_first_and_keeps_its_names() {
    let dir = scratch("file");
    let file = dir.join("setup.flx");
    std::fs::write(&file, "let base = 40\nfn bump(x) = x + 2\n").expect("write");
    let args = ["repl", file.to_str().expect("utf-8 path")];
    let (out, err, code) = piped_with_args(&args, "bump(base)\n", &[]);
    assert_eq!((out.as_str(), err.as_str(), code), ("42\n", "", 0));
}

#[test]
fn the_readme_session_is_what_flx_prints() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let block = readme
        .split("```text\n$ flx\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a REPL session in the README");
    let (mut inputs, mut expected) = (String::new(), String::new());
    // The banner is printed on a terminal only.
    for line in block.lines().skip(1) {
        match line.strip_prefix(PROMPT) {
            Some(input) => inputs.push_str(&format!("{input}\n")),
            None => expected.push_str(&format!("{line}\n")),
        }
    }
    let (out, err, code) = piped(&inputs, &[]);
    // The peak memory `:vars` ends with depends on the machine.
    let peak = |text: &str| -> String {
        text.lines()
            .map(|l| match l.strip_prefix("peak memory of the session: ") {
                Some(_) => "peak memory of the session: …\n".to_string(),
                None => format!("{l}\n"),
            })
            .collect()
    };
    assert_eq!(
        (peak(&out).as_str(), err.as_str(), code),
        (peak(&expected).as_str(), "", 0)
    );
}

#[test]
fn mistakes_in_commands_are_reported_and_the_session_goes_on() {
    let script = "\
:load no/such/file.flx
:type let x = 1
:type
:help lenght
:bogus
:t 1 + 2
:h :time
";
    let (out, err, code) = piped(script, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "Int\n:time INPUT\n\nrun INPUT and report how long it took\n"
    );
    for message in [
        "cannot read no/such/file.flx",
        "`:type` takes one expression",
        "`:type` needs an expression",
        "did you mean `len`",
        "unknown command `:bogus`",
    ] {
        assert!(err.contains(message), "{message:?} in {err}");
    }
}

#[test]
fn long_training_shows_progress_on_a_terminal() {
    let mut p = start_fresh("progress");
    enter(
        &mut p,
        "model mlp(d, h) { param W = randn(d, h) / sqrt(d); param a = randn(h, 1) / sqrt(h); forward(x) = relu(x @ W) @ a }",
        "",
    );
    enter(&mut p, "let X = randn(1000, 100, seed: 0)", "");
    // About three seconds of steps; the bar appears after the first second.
    p.send_line("let h = train(mlp(100, 64, seed: 1), mse, X, X[:, 0:1], opt: gd(lr: 0.001), steps: 2500, every: 2500)")
        .expect("send");
    p.exp_string("train mlp [").expect("a progress bar");
    p.exp_string("steps, loss")
        .expect("the step count and the loss");
    p.exp_string(PROMPT).expect("prompt after training");
    enter(&mut p, "len(h.step)", "2");
    // A loop over `progress(...)` (about four seconds); lines it prints land above the bar.
    p.send_line("for t in progress(0..600, label: \"sweep\") { let K = X @ X.T; if t == 599 { print(\"last\") } }")
        .expect("send");
    p.exp_string("sweep [").expect("a loop's progress bar");
    p.exp_string("/600").expect("the iteration count");
    p.exp_string("last").expect("the loop's output");
    p.exp_string(PROMPT).expect("prompt after the loop");
}

#[test]
fn help_documents_module_members_and_unfinished_names_say_why() {
    let script = "\
use std.rfm
:help rfm.fit
let fb = ones(3) @ ones(4)
:type fb
";
    let (out, err, _) = piped(script, &[]);
    assert!(
        out.starts_with("fit(X, y"),
        "the stdlib function's signature: {out}"
    );
    assert!(out.contains("Fit an RFM."), "its doc comment: {out}");
    assert!(
        err.contains("`fb` has no value: the input that defines it stopped with an error first"),
        "{err}"
    );
    assert!(!err.contains("used before it is defined"), "{err}");
}

/// On a terminal with the usual settings (echo on, as `script` makes it; the
/// rexpect pty has echo off), Ctrl-C during a computation is not echoed as
/// `^C`, which would break the line of a progress bar on screen.
#[test]
fn ctrl_c_is_not_echoed_into_the_output() {
    use std::io::Write;
    let flx = env!("CARGO_BIN_EXE_flx");
    let mut child = Command::new("script")
        .args(["-qfec", &format!("{flx} repl"), "/dev/null"])
        .env("FLX_HISTORY", "")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script(1), from util-linux");
    let mut stdin = child.stdin.take().expect("stdin");
    let pause = |ms| std::thread::sleep(std::time::Duration::from_millis(ms));
    pause(1000);
    stdin.write_all(b"let i = 0\r").expect("input");
    pause(500);
    stdin.write_all(b"while true { i += 1 }\r").expect("input");
    pause(1000);
    stdin.write_all(b"\x03").expect("Ctrl-C");
    pause(1000);
    stdin.write_all(b":quit\r").expect("input");
    pause(500);
    drop(stdin);
    let out = child.wait_with_output().expect("the REPL ends");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("interrupted"), "{text}");
    assert!(!text.contains("^C"), "{text}");
}

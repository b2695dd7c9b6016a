//! Running the `flx` binary as a process: shared by the tests that drive it
//! from outside.

// Each test binary uses some of these.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// `flx ARGS` without colour, run to its end.
pub fn flx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flx"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("flx runs")
}

/// `flx ARGS` with `input` on its standard input and `env` added to its
/// environment, run to its end.
pub fn flx_piped(args: &[&str], input: &str, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flx"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flx");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("flx runs")
}

/// Bytes a process wrote, as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

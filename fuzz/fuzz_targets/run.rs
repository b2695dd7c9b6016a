//! Any text: check and run it with a step budget, small tensors and no file
//! writes, once with the JIT and once without. The result is a value or a
//! diagnostic that renders, the same both ways. Never a panic, never a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The in-memory writer the test binaries use.
#[path = "../../tests/common/mod.rs"]
mod common;
use common::Captured;

/// What a run prints, then its diagnostic if it fails.
fn run(text: &str, jit: bool) -> String {
    let printed = Captured::default();
    let options = flx::Options { seed: 0, step_limit: Some(20_000), no_jit: !jit };
    let host = flx::StdHost::new(printed.clone()).read_only();
    let mut session = flx::Session::new(host, &options);
    let dir = std::env::temp_dir();
    let result = session.run_source("fuzz.flx", text, &dir).and_then(|_| session.call_main(Vec::new()));
    let mut out = String::from_utf8_lossy(&printed.0.borrow()).into_owned();
    if let Err(diags) = result {
        out += &session.render(&diags, false);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let text = text.to_string();
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            flx::tensor::set_max_elements(1 << 16);
            // Every elementwise chain runs compiled, however small.
            flx::eval::fused::set_fuse_min(1);
            let with = run(&text, true);
            let without = run(&text, false);
            // The clock is the one thing that may differ between runs.
            if !text.contains("time") {
                assert_eq!(with, without, "the JIT and the interpreter differ");
            }
        })
        .expect("spawn")
        .join()
        .expect("the interpreter panicked, or the JIT differs");
});

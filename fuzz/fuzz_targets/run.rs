//! Any text: check and run it with a step budget, small tensors and no file
//! writes. The result is a value or a diagnostic that renders. Never a panic,
//! never a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let text = text.to_string();
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            flx::tensor::set_max_elements(1 << 16);
            let options = flx::Options { seed: 0, step_limit: Some(20_000), no_jit: false };
            let mut session = flx::Session::new(Box::new(std::io::sink()), &options);
            session.interp.allow_writes = false;
            let dir = std::env::temp_dir();
            if let Err(diags) = session.run_source("fuzz.flx", &text, &dir).and_then(|_| session.call_main(Vec::new())) {
                let _ = session.render(&diags, false);
            }
        })
        .expect("spawn")
        .join()
        .expect("the interpreter panicked");
});

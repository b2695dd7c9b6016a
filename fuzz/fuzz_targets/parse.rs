//! Any text: parsing either succeeds or returns a diagnostic that renders. Never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let text = text.to_string();
    // The parser recurses; run it with the stack `flx` gives it.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let mut sources = flx::diag::SourceMap::default();
            let file = sources.add("fuzz.flx", text.as_str());
            if let Err(d) = flx::syntax::parse_module(&text, file) {
                let _ = d.render(&sources, false);
            }
        })
        .expect("spawn")
        .join()
        .expect("the parser panicked");
});

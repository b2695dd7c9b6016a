//! Any text: parsing either succeeds or returns a diagnostic that renders; the
//! REPL's views of it (highlighting tokens, `flx highlight`'s output, "needs more lines", an open string)
//! cover it in order. Never a panic.
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
            let mut at = 0;
            for t in flx::syntax::lex::tokens(&text, &|w| w.len() == 3) {
                assert!(at <= t.start && t.start < t.end && t.end <= text.len(), "tokens in order");
                assert!(text.is_char_boundary(t.start) && text.is_char_boundary(t.end));
                at = t.end;
            }
            let _ = flx::highlight::ansi(&text);
            let _ = flx::highlight::html("fuzz.flx", &text);
            let _ = flx::syntax::is_incomplete(&text);
            if let Some(start) = flx::syntax::open_string(&text) {
                assert!(text.is_char_boundary(start));
            }
        })
        .expect("spawn")
        .join()
        .expect("the parser panicked");
});

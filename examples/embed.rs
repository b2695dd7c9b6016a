//! flx inside a Rust program: a session with a host, Rust data bound as flx
//! names, a host function flx can call, source and a file run, and values
//! read back as ndarray arrays.
//!
//!     cargo run --release --example embed

use std::path::Path;

use flx::{Options, Session, StdHost, Value};
use ndarray::{Array1, Array2};

pub fn main() {
    // Every effect of the session (printing, files, the clock) goes through its host.
    let mut s = Session::new(StdHost::new(std::io::stdout()), &Options::default());

    // Rust values as flx names: arrays of any dimension, numbers, strings, records.
    let x = Array2::from_shape_fn((400, 6), |(i, j)| {
        (((i * 37 + j * 11) % 101) as f64 / 101.0 - 0.5) * 2.0
    });
    let y: Array1<f64> = &x.column(0) * &x.column(1);
    s.set("X", x);
    s.set("y", y);
    s.set("label", "embedded RFM step");
    s.set(
        "cfg",
        Value::record([("L", 4.0.into()), ("reg", 1e-3.into())]),
    );

    // A host function: its signature is checked like a builtin's.
    s.define("clip01", "x, lo=0.0", "Clip a tensor into [lo, 1].", |a| {
        let lo = a.f64(1)?;
        if lo.is_nan() || lo > 1.0 {
            return Err(a.error(1, "embed::clip01", "`lo` must be at most 1"));
        }
        Ok(Value::from(a.tensor(0)?.mapv(|v| v.clamp(lo, 1.0))))
    })
    .expect("a new name");

    // Source text, run in the session.
    let src = "\
kernel laplace(L = 10.0) = exp(-dist / L)
let f = krr(X, y, laplace(L: cfg.L), reg: cfg.reg)
let M = agop(f, X)
let p = clip01(f(X), lo: 0.1)
print(label, shape(M), argsort(-diag(M))[0:2])
";
    if let Err(d) = s.run_source("embed.flx", src, Path::new(".")) {
        panic!("{}", s.render(&d, false));
    }

    // Values back in Rust, as ndarray arrays.
    let m = s
        .get("M")
        .and_then(|v| v.to_array())
        .expect("M is a tensor");
    let p = s
        .get("p")
        .and_then(|v| v.to_array())
        .expect("p is a tensor");
    let top = (0..m.shape()[0])
        .max_by(|&a, &b| m[[a, a]].total_cmp(&m[[b, b]]))
        .expect("features");
    assert!(top <= 1, "the AGOP finds x0 or x1 first, found x{top}");
    assert!(p.iter().all(|&v| (0.1..=1.0).contains(&v)));
    println!(
        "from Rust: M is {:?}, its largest diagonal entry is x{top}",
        m.shape()
    );

    // A file, run in the same session: its names join the session's.
    let file = std::env::temp_dir().join(format!("flx-embed-{}.flx", std::process::id()));
    std::fs::write(&file, "let err = mean((f(X) - y) ^ 2)\n").expect("a temporary file");
    let ran = s.run_file(&file);
    let _ = std::fs::remove_file(&file);
    if let Err(d) = ran {
        panic!("{}", s.render(&d, false));
    }
    match s.get("err") {
        Some(Value::Float(e)) => println!("from the file: training mse {e:.2e}"),
        other => panic!("err is {other:?}"),
    }

    // Calling the host function wrongly is a check error, before anything runs.
    let diags = s
        .run_source("bad.flx", "let q = clip01()", Path::new("."))
        .expect_err("clip01 needs `x`");
    assert_eq!(diags[0].code, "flx::call::missing_arg");
    assert!(s.get("q").is_none());
    print!("{}", s.render(&diags, false));
}

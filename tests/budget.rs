//! The step budget counts the work inside builtins as well as interpreted
//! steps, so a program that asks a builtin for hours of work is cut off with
//! `flx::run::step_limit` (the fuzz targets rely on this), while the same
//! program with room to run finishes.

use std::path::Path;

use flx::{Options, Session};

mod common;
use common::Captured;

/// The diagnostic code a program ends with under a budget of `limit` steps,
/// or "ok".
fn outcome(src: &str, limit: u64) -> String {
    let options = Options {
        seed: 0,
        step_limit: Some(limit),
        no_jit: false,
    };
    let mut s = Session::new(flx::StdHost::new(Captured::default()), &options);
    match s.run_source("budget.flx", src, Path::new(".")) {
        Ok(_) => "ok".into(),
        Err(d) => s
            .render(&d, false)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
    }
}

const LIN: &str = "model lin(d) {\n  param W = zeros(d, 1)\n  forward(x) = x @ W\n}\n\
                   let X = randn(64, 4, seed: 0)\nlet y = X[:, 0:1]\n\
                   kernel laplace(L = 1.0) = exp(-dist / L)\n\
                   kernel gaussian(L = 1.0) = exp(-sqdist / L)\n";

/// Each program costs about the given number of steps.
const CASES: &[(&str, &str)] = &[
    (
        "train",
        "train(lin(4), mse, X, y, opt: gd(lr: 0.01), steps: STEPS)",
    ),
    (
        "sgd",
        "train(lin(4), mse, X, y, opt: sgd(lr: 0.01), batch: 1, epochs: STEPS)",
    ),
    (
        "adam",
        "train(lin(4), mse, X, y, opt: adam(lr: 0.01), steps: STEPS)",
    ),
    ("loop", "let s = 0\nfor i in 0..STEPS { s = s + i }"),
    // Builtins are charged for their flops before they start, so these stop
    // at once rather than after minutes.
    ("matmul", "let A = ones(STEPS * 100, 640)\nA @ A.T"),
    (
        "krr",
        "krr(ones(STEPS * 100, 2), ones(STEPS * 100), laplace(L: 1.0))",
    ),
    (
        "gram",
        "gram(laplace(L: 1.0), ones(STEPS * 100, 640), M: eye(640))",
    ),
    ("eigh", "eigh(eye(STEPS * 100))"),
    (
        "agop",
        "let f = krr(ones(8, 640), ones(8), gaussian(L: 1.0))\nagop(f, ones(STEPS * 100, 640))",
    ),
];

#[test]
fn long_builtins_are_cut_off() {
    for (name, body) in CASES {
        let big = if body.contains("STEPS * 100") {
            "30"
        } else {
            "100000000000"
        };
        let src = format!("{LIN}{}", body.replace("STEPS", big));
        assert_eq!(outcome(&src, 20_000), "flx::run::step_limit", "{name}");
        let src = format!("{LIN}{}", body.replace("STEPS", "3"));
        assert_eq!(outcome(&src, 20_000), "ok", "{name} with room to run");
    }
}

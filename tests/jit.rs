//! Differential tests of the JIT: generated programs and kernel bodies run
//! with the JIT and in the interpreter must give the same output, bit for
//! bit, and the same diagnostics. A failure found here stays as a case in
//! `regressions()`.

use std::path::Path;

use flx::eval::value::Value;
use flx::{Options, Session};
use proptest::prelude::*;

mod common;
use common::Captured;

/// Output and diagnostics of a program, and how many functions ran as machine code.
fn run(src: &str, jit: bool) -> (String, usize) {
    let out = Captured::default();
    let options = Options {
        seed: 0,
        step_limit: Some(1_000_000),
        no_jit: !jit,
    };
    let mut s = Session::new(flx::StdHost::new(out.clone()), &options);
    let result = s.run_source("gen.flx", src, Path::new("."));
    let mut text = String::from_utf8(out.0.borrow().clone()).expect("utf-8");
    if let Err(d) = result {
        text.push_str(&s.render(&d, false));
    }
    (text, s.compiled().0)
}

/// A tensor's elements as bit patterns; every nan counts as one.
fn bits(t: &ndarray::ArrayD<f64>) -> String {
    let bits: Vec<String> = t
        .iter()
        .map(|x| format!("{:x}", if x.is_nan() { 1 } else { x.to_bits() }))
        .collect();
    bits.join(",")
}

/// How many of `total` cases drawn from `strategy` (always the same ones) pass `ok`.
fn passing<S: Strategy>(strategy: S, total: usize, ok: impl Fn(&S::Value) -> bool) -> usize {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    (0..total)
        .filter(|_| ok(&strategy.new_tree(&mut runner).expect("a case").current()))
        .count()
}

fn same(src: &str) -> usize {
    let (with, compiled) = run(src, true);
    let (without, none) = run(src, false);
    assert_eq!(none, 0);
    assert_eq!(with, without, "JIT and interpreter differ on:\n{src}");
    compiled
}

// ---- generated scalar programs ---------------------------------------------

fn sel(v: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(v)
}

fn int_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("n".to_string()),
        Just("i0".to_string()),
        Just("k".to_string()),
        (-5i64..20).prop_map(|v| v.to_string()),
        Just("4611686018427387904".to_string()),
        Just("len(t)".to_string()),
        Just("int(x * 3.0)".to_string()),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        (inner.clone(), sel(&["+", "-", "*", "%", "^"]), inner)
            .prop_map(|(a, op, b)| format!("({a} {op} {b})"))
    })
}

fn float_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("x".to_string()),
        Just("f0".to_string()),
        (-30i32..30).prop_map(|v| format!("{:.2}", v as f64 / 7.0)),
        int_expr().prop_map(|e| format!("float({e})")),
        int_expr().prop_map(|e| format!("t[{e}]")),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                sel(&["+", "-", "*", "/", "%"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (inner.clone(), sel(&["2", "3", "0.5", "1.5"]))
                .prop_map(|(a, p)| format!("({a} ^ {p})")),
            (
                sel(&["exp", "log", "sqrt", "abs", "sin", "tanh", "sigmoid", "floor", "sign"]),
                inner
            )
                .prop_map(|(f, a)| format!("{f}({a})")),
        ]
    })
}

fn bool_expr() -> impl Strategy<Value = String> {
    prop_oneof![
        (int_expr(), sel(&["<", "<=", "==", "!="]), int_expr())
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (float_expr(), sel(&[">", ">=", "==", "!="]), float_expr())
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (int_expr(), float_expr()).prop_map(|(a, b)| format!("{a} < 3 and not ({b} > 1.0)")),
    ]
}

fn program() -> impl Strategy<Value = String> {
    (
        int_expr(),
        float_expr(),
        0i64..6,
        float_expr(),
        bool_expr(),
        int_expr(),
        (int_expr(), float_expr()),
        float_expr(),
        prop::bool::ANY,
    )
        .prop_map(|(i, f, iters, step, cond, di, (ti, tv), result, ret_t)| {
            let ret = if ret_t { "t".to_string() } else { format!("{result} + float(i0)") };
            format!(
                "fn f(n, x, t) {{\n    let k = 0\n    let i0 = 1\n    let f0 = 0.5\n    i0 = {i}\n    f0 = {f}\n    for j in 0..{iters} {{\n        k = j\n        f0 = f0 + {step}\n        if {cond} {{\n            i0 = i0 + {di}\n        }} else {{\n            t[{ti}] = {tv}\n        }}\n        if f0 > 1000.0 {{ break }}\n    }}\n    return {ret}\n}}\nlet t = [1.0, -2.0, 3.5]\nprint(f(3, 0.75, t))\nprint(f(-2, -1.5, t))\nprint(t)\n"
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn scalar_programs_agree(src in program()) {
        same(&src);
    }

    #[test]
    fn chains_agree(expr in chain_expr()) {
        chain_agrees(CHAIN_SETUP, &expr);
    }

    #[test]
    fn kernel_bodies_agree(body in kernel_body()) {
        kernel_agrees(&body);
    }
}

// ---- generated elementwise chains --------------------------------------------

/// Chains over tensors large enough to run as one compiled loop: a matrix,
/// its transpose (not in the standard layout), a row, a column, a
/// one-element tensor, numbers, and now and then an operand that fails.
fn chain_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => sel(&["A", "B", "r", "c", "one", "s", "i", "0.5", "2", "-1.5"]).prop_map(String::from),
        1 => sel(&["bad", "\"x\"", "true"]).prop_map(String::from),
    ];
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                sel(&["+", "-", "*", "/", "%", "<", ">=", "==", "!="]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (inner.clone(), sel(&["2", "3", "0.5", "1.5", "s", "i"]))
                .prop_map(|(a, p)| format!("({a} ^ {p})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (
                sel(&["exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "round"]),
                inner
            )
                .prop_map(|(f, a)| format!("{f}({a})")),
        ]
    })
}

/// The operands of generated chains: 200 × 200 results are more than one
/// parallel task, whole or row by row.
const CHAIN_SETUP: &str = "let A = randn(200, 200, seed: 1)\nlet B = A.T * 1.0 + randn(200, 200, seed: 4).T\nlet r = randn(200, seed: 2)\nlet c = randn(200, 1, seed: 3)\nlet one = [2.5]\nlet bad = [1.0, 2.0, 3.0]\nlet s = 0.7\nlet i = 3\n";

/// The value of `y = expr` after `setup` (bit patterns) or the diagnostic,
/// and how many chains were compiled.
fn chain_result(setup: &str, expr: &str, jit: bool) -> (String, usize) {
    let src = format!("{setup}let y = {expr}\n");
    let options = Options {
        seed: 0,
        step_limit: None,
        no_jit: !jit,
    };
    let mut s = Session::new(flx::StdHost::new(std::io::sink()), &options);
    let text = match s.run_source("chain.flx", &src, Path::new(".")) {
        Err(d) => s.render(&d, false),
        Ok(_) => match s.get("y") {
            Some(v) if v.is_tensor() => {
                let t = v.to_array().expect("a tensor");
                format!("{:?} {:?} {}", v.dtype(), t.shape(), bits(&t))
            }
            other => format!("{other:?}"),
        },
    };
    (text, s.compiled().1)
}

fn chain_agrees(setup: &str, expr: &str) -> usize {
    let (with, compiled) = chain_result(setup, expr, true);
    let (without, none) = chain_result(setup, expr, false);
    assert_eq!(none, 0);
    assert_eq!(with, without, "chain differs: {expr}");
    compiled
}

#[test]
fn generated_chains_mostly_run_as_machine_code() {
    let total = 100;
    let compiled = passing(chain_expr(), total, |e| {
        chain_result(CHAIN_SETUP, e, true).1 > 0
    });
    assert!(
        compiled * 10 > total * 7,
        "only {compiled} of {total} generated chains compiled"
    );
}

// ---- generated kernel bodies ------------------------------------------------

fn kernel_body() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("dist".to_string()),
        Just("sqdist".to_string()),
        Just("dot".to_string()),
        Just("xnorm".to_string()),
        Just("znorm".to_string()),
        (1i32..9).prop_map(|v| format!("{:.1}", v as f64 / 2.0)),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), sel(&["+", "-", "*", "/"]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (inner.clone(), sel(&["2", "3", "0.5", "1.7"]))
                .prop_map(|(a, p)| format!("({a} ^ {p})")),
            (
                sel(&["exp", "sqrt", "abs", "tanh", "sin", "sigmoid", "log"]),
                inner.clone()
            )
                .prop_map(|(f, a)| format!("{f}(-{a})")),
            (sel(&["min", "max"]), inner.clone(), inner)
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
        ]
    })
}

/// `gram` and `agop` of a kernel with this body, both ways, bit for bit.
/// Returns whether the Gram matrices were computed (the body is valid).
fn kernel_agrees(body: &str) -> bool {
    let setup = format!(
        "kernel k(L = 1.0) = {body}\nlet X = randn(37, 3, seed: 1) / 2.0\nlet Z = randn(29, 3, seed: 2) / 2.0\nlet M = eye(3) + 0.1\nlet G = gram(k, X, X, M)\nlet H = gram(k, X, Z, M)\n"
    );
    // K + I may still not be positive definite for an odd body: then no AGOP.
    let fit = "let fitted = krr(X, sin(X[:, 0]), k, reg: 1.0, M: M)\nlet A = agop(fitted, Z)\n";
    let mut results = Vec::new();
    let mut computed = false;
    for jit in [true, false] {
        let mut s = common::quiet_session(jit);
        let mut text = String::new();
        for (src, names) in [(setup.as_str(), &["G", "H"][..]), (fit, &["A"][..])] {
            match s.run_source("k.flx", src, Path::new(".")) {
                Err(d) => {
                    text += &s.render(&d, false);
                    break;
                }
                Ok(_) => {
                    computed = true;
                    for n in names {
                        let Some(t) = s.get(n).and_then(|v| v.to_array()) else {
                            panic!("{n} is a tensor")
                        };
                        text += &bits(&t);
                        text.push('\n');
                    }
                }
            }
        }
        results.push(text);
    }
    assert_eq!(results[0], results[1], "kernel body differs: {body}");
    computed
}

#[test]
fn generated_kernel_bodies_are_mostly_valid() {
    let total = 50;
    let valid = passing(kernel_body(), total, |b| kernel_agrees(b));
    assert!(
        valid * 10 > total * 9,
        "only {valid} of {total} generated bodies are valid"
    );
}

#[test]
fn programs_run_as_machine_code() {
    // The generated programs must mostly qualify, or the test above proves little.
    let src = "fn f(n, x, t) {\n    let s = 0.0\n    for i in 0..n { s += x * t[i % len(t)] }\n    t[0] = s\n    return t\n}\nlet t = [1.0, 2.0]\nprint(f(5, 0.5, t), t)\n";
    assert_eq!(same(src), 1);
}

/// Cases found by the generators (or by hand) that once differed.
#[test]
fn regressions() {
    for src in [
        // Int overflow inside a loop: the interpreter's diagnostic, with its span.
        "fn f(n) {\n    let p = 1\n    for i in 0..n { p = p * 1000 }\n    return p\n}\nprint(f(3))\nprint(f(10))\n",
        // An index out of range after writes to the tensor: the write is undone.
        "fn f(t, n) {\n    for i in 0..n { t[i] = 9.0 }\n    return t\n}\nlet t = [1.0, 2.0, 3.0]\nprint(f(t, 2))\nprint(f(t, 4))\n",
        // `%` by a power of two (a mask) and by other numbers, on negative Ints.
        "fn f(a) = (a % 8, a % 1, a % 4611686018427387904, a % 6, a % -8)\nprint(f(-13), f(13), f(-4611686018427387904))\n",
        // `%` and `^` on negative Ints, and a negative exponent (a Float).
        "fn f(a, b) = (a % b, a ^ 2, -a % 3)\nfn g(a, b) = a ^ b\nprint(f(-7, 3), f(7, -3), g(2, 3), g(2, -1))\n",
        // A variable that changes type runs in the interpreter.
        "fn f(n) {\n    let s = 0\n    for i in 0..n { s += 0.5 }\n    return s\n}\nprint(f(0), f(3))\n",
        // Step limit inside a compiled loop.
        "fn f() {\n    let i = 0\n    while true { i += 1 }\n    return i\n}\nprint(f())\n",
        // A chain fails where the interpreter fails: before `f` is called.
        "fn f() {\n    print(\"called\")\n    return 1.0\n}\nlet A = randn(200, 100)\nprint(sum(exp(-A) * 2.0 + f()))\nprint(-(A + [1.0, 2.0]) * f())\n",
        // The step limit counts the builtins of a chain.
        "let A = randn(3)\nlet n = 0\nwhile true {\n    A = exp(-abs(A)) * 0.5\n    n += 1\n}\n",
    ] {
        same(src);
    }
    // Rows longer than a parallel task, split across tasks.
    let long_rows = "let W = randn(3, 40000, seed: 5)\nlet w = randn(40000, seed: 6)\n";
    assert_eq!(
        chain_agrees(long_rows, "exp(-(W - w) ^ 2) * W.T.T + w % 0.3"),
        1
    );
    // Kernel powers are the interpreter's (`prim::math::pow`: sqrt for 0.5).
    assert!(kernel_agrees("((znorm - dot) ^ 0.5)"));
    assert!(kernel_agrees("exp(-dist / L) + (sqdist ^ 3)"));
    // `exp` beyond [-708, 709] and of nan goes to the cold block, lane by lane.
    assert!(kernel_agrees(
        "exp(dot * 400.0) + exp(-sqdist * 500.0) + exp(log(dot))"
    ));
}

#[test]
fn generated_programs_mostly_run_as_machine_code() {
    let total = 100;
    let compiled = passing(program(), total, |src| run(src, true).1 > 0);
    assert!(
        compiled * 10 > total * 9,
        "only {compiled} of {total} generated programs compiled"
    );
}

#[test]
fn math_builtins_are_the_primitives_functions() {
    let mut s = Session::new(flx::StdHost::new(std::io::sink()), &Options::default());
    for u in flx::prim::Unary::ALL {
        let Some(name) = u.builtin() else { continue };
        for x in [-2.5, -0.0, 0.3, 1e-300, 1.5, 700.0, 3.0e10] {
            let got = s
                .run_source("m.flx", &format!("{name}({x:?})"), Path::new("."))
                .expect("runs");
            let Value::Float(y) = got else {
                panic!("{name} gives a Float")
            };
            let want = u.apply(x);
            assert!(
                y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()),
                "{name}({x}): builtin {y}, primitive {want}"
            );
        }
    }
}

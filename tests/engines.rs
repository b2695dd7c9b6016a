//! Every engine computes a primitive the same way. For generated formulas
//! of everything a kernel body may contain (the geometry, a hyperparameter,
//! constants, `+ - * / ^` with Int and Float exponents, each unary primitive
//! a kernel accepts, `pow`, `min`, `max`, negation), `gram` of a kernel with
//! that body must be, bit for bit, what the same formula gives elementwise
//! on the geometry matrices: as tensor operations (fused into one compiled
//! loop with the JIT, operator by operator without), element by element in
//! a `fn` (the scalar JIT, or the interpreter), and under `value_and_grad`.
//! The tape's derivative of the formula must also match, to rounding, the
//! kernel's own symbolic derivative (what `agop` uses).

use std::path::Path;

use flx::eval::value::Value;
use flx::prim::Unary;
use flx::Session;
use ndarray::ArrayD;
use proptest::prelude::*;

mod common;

/// A formula over the pair geometry.
#[derive(Clone, Debug)]
enum F {
    Leaf(&'static str),
    Const(&'static str),
    Neg(Box<F>),
    Unary(Unary, Box<F>),
    Binary(&'static str, Box<F>, Box<F>),
    /// `a ^ p` for a literal exponent.
    Power(Box<F>, &'static str),
    /// `pow`, `min` or `max` of two formulas.
    Call(&'static str, Box<F>, Box<F>),
}

impl F {
    fn text(&self) -> String {
        match self {
            F::Leaf(s) | F::Const(s) => s.to_string(),
            F::Neg(a) => format!("(-{})", a.text()),
            F::Unary(u, a) => format!("{}({})", u.builtin().expect("a builtin"), a.text()),
            F::Binary(op, a, b) => format!("({} {op} {})", a.text(), b.text()),
            F::Power(a, p) => format!("({} ^ {p})", a.text()),
            F::Call(f, a, b) => format!("{f}({}, {})", a.text(), b.text()),
        }
    }
}

const GEOMETRY: [&str; 6] = ["dist", "sqdist", "dot", "xnorm", "znorm", "l1dist"];

fn formula() -> impl Strategy<Value = F> {
    // Every unary primitive a kernel body accepts, read from the table, so a
    // new primitive is generated as soon as it exists.
    let unary: Vec<Unary> = Unary::ALL
        .into_iter()
        .filter(|u| u.in_kernels() && u.builtin().is_some())
        .collect();
    let leaf = prop_oneof![
        4 => proptest::sample::select(&GEOMETRY[..]).prop_map(F::Leaf),
        1 => Just(F::Leaf("L")),
        2 => proptest::sample::select(&["0.5", "2.0", "3.0", "0.0", "1e-3", "7"][..]).prop_map(F::Const),
    ];
    leaf.prop_recursive(4, 16, 2, move |inner| {
        let unary = unary.clone();
        prop_oneof![
            (
                inner.clone(),
                proptest::sample::select(&["+", "-", "*", "/"][..]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| F::Binary(op, Box::new(a), Box::new(b))),
            (
                inner.clone(),
                proptest::sample::select(&["2", "3", "4", "-1", "0", "0.5", "1.7", "2.0"][..])
            )
                .prop_map(|(a, p)| F::Power(Box::new(a), p)),
            (proptest::sample::select(unary), inner.clone())
                .prop_map(|(u, a)| F::Unary(u, Box::new(a))),
            inner.clone().prop_map(|a| F::Neg(Box::new(a))),
            (
                proptest::sample::select(&["pow", "min", "max"][..]),
                inner.clone(),
                inner
            )
                .prop_map(|(f, a, b)| F::Call(f, Box::new(a), Box::new(b))),
        ]
    })
}

/// A tensor's elements as bit patterns; every nan counts as one.
fn bits(t: &ArrayD<f64>) -> Vec<u64> {
    t.iter()
        .map(|x| if x.is_nan() { 1 } else { x.to_bits() })
        .collect()
}

fn tensor(s: &Session, name: &str) -> ArrayD<f64> {
    match s.get(name) {
        Some(v @ (Value::Tensor(_) | Value::Float(_) | Value::Int(_))) => {
            v.to_array().expect("an array")
        }
        other => panic!("`{name}` is {other:?}"),
    }
}

fn float(s: &Session, name: &str) -> f64 {
    match s.get(name) {
        Some(Value::Float(f)) => f,
        other => panic!("`{name}` is {other:?}"),
    }
}

/// The program that computes the formula every way. 150 × 120 pairs: more
/// than `FUSE_MIN` elements, so the tensor form runs as one compiled loop.
fn program(body: &str) -> String {
    let geometry_kernels: String = GEOMETRY
        .iter()
        .map(|g| format!("kernel geo_{g}() = {g}\n"))
        .collect();
    let geometry: String = GEOMETRY
        .iter()
        .map(|g| format!("let {g} = gram(geo_{g}, X, Z, M: M)\n"))
        .collect();
    let reads: String = GEOMETRY
        .iter()
        .enumerate()
        .map(|(k, g)| format!("            let {g} = G{k}[i, j]\n"))
        .collect();
    let fields: String = GEOMETRY
        .iter()
        .map(|g| format!("    let {g} = q.{g}\n"))
        .collect();
    let record: Vec<String> = GEOMETRY.iter().map(|g| format!("{g}: {g}")).collect();
    format!(
        "kernel k(L = 1.5) = {body}
{geometry_kernels}let X = randn(150, 3, seed: 1) / 2.0
let Z = randn(120, 3, seed: 2) / 2.0
# Diagonal, so that `l1dist` is defined.
let M = [1.1, 0.9, 1.3]
let K = gram(k, X, Z, M: M)
{geometry}let L = 1.5
let E = {body}
fn each(out, G0, G1, G2, G3, G4, G5, L) {{
    for i in 0..rows(out) {{
        for j in 0..cols(out) {{
{reads}            out[i, j] = {body}
        }}
    }}
    return out
}}
let S = each(zeros(150, 120), dist, sqdist, dot, xnorm, znorm, l1dist, L)
let W = randn(150, 120, seed: 3)
let (v, g) = value_and_grad(|q| {{
{fields}    sum(({body}) * W)
}})({{{}}})
let v0 = sum(E * W)
let gdist = g.dist
",
        record.join(", ")
    )
}

/// Runs the program with and without the JIT; `None` if the body is not a
/// valid kernel (or the formula fails), which both modes must agree on.
fn engines_agree(f: &F) -> Option<()> {
    let body = f.text();
    let src = program(&body);
    let mut kernel_gram = Vec::new();
    for jit in [true, false] {
        let mut s = common::quiet_session(jit);
        if let Err(d) = s.run_source("engines.flx", &src, Path::new(".")) {
            let text = s.render(&d, false);
            assert!(
                text.contains("flx::kernel") || text.contains("flx::math"),
                "unexpected failure of `{body}`:\n{text}"
            );
            kernel_gram.push(None);
            continue;
        }
        let k = tensor(&s, "K");
        let shape = k.raw_dim();
        let k = bits(&k);
        for name in ["E", "S"] {
            let e = tensor(&s, name);
            let e = e
                .broadcast(shape.clone())
                .expect("a scalar or the Gram's shape");
            assert_eq!(
                k,
                bits(&e.to_owned()),
                "gram and `{name}` differ (jit: {jit}) for `{body}`"
            );
        }
        let (v, v0) = (float(&s, "v"), float(&s, "v0"));
        assert!(
            v.to_bits() == v0.to_bits() || (v.is_nan() && v0.is_nan()),
            "under value_and_grad {v}, plain {v0} (jit: {jit}) for `{body}`"
        );
        derivative_matches(&s, &body);
        kernel_gram.push(Some(k));
    }
    assert_eq!(
        kernel_gram[0], kernel_gram[1],
        "gram with and without the JIT differs for `{body}`"
    );
    kernel_gram[0].as_ref().map(|_| ())
}

/// The tape's d(sum(F · W))/d dist, against W times the kernel's symbolic
/// ∂k/∂dist evaluated on the same geometry (within rounding, where finite).
fn derivative_matches(s: &Session, body: &str) {
    let Some(Value::Kernel(k)) = s.get("k") else {
        panic!("k is a kernel")
    };
    let (mut g, root) = k.body();
    let d = g.derivative(root, flx::kernel::expr::Geo::Dist);
    let geo: Vec<ArrayD<f64>> = GEOMETRY.iter().map(|n| tensor(s, n)).collect();
    let (w, grad) = (tensor(s, "W"), tensor(s, "gdist"));
    // The two sum the chain rule's terms in different orders, so where terms
    // cancel they differ by more than rounding: nearly all must agree.
    let (mut compared, mut agreed) = (0, 0);
    let mut worst = None;
    for (idx, &got) in grad.indexed_iter() {
        let at: [f64; 6] = std::array::from_fn(|q| geo[q][&idx]);
        let want = w[&idx] * g.eval(d, &at, &[]);
        if !(got.is_finite() && want.is_finite()) {
            continue;
        }
        compared += 1;
        if (got - want).abs() <= 1e-8 * (1.0 + want.abs().max(got.abs())) {
            agreed += 1;
        } else {
            worst.get_or_insert((idx, got, want));
        }
    }
    assert!(
        agreed * 50 >= compared * 49,
        "d/d dist agrees at {agreed} of {compared} pairs (first: {worst:?}) for `{body}`"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn every_engine_computes_a_kernel_formula_alike(f in formula()) {
        engines_agree(&f);
    }
}

/// The generated formulas must mostly be valid kernels, or the test above proves little.
#[test]
fn generated_formulas_are_mostly_valid_kernels() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let total = 40;
    let valid = (0..total)
        .filter(|_| {
            engines_agree(&formula().new_tree(&mut runner).expect("a case").current()).is_some()
        })
        .count();
    assert!(valid * 10 >= total * 9, "only {valid} of {total} are valid");
}

/// The drifts this test was written for: powers, sigmoid, exp, and nan
/// through `max` and `relu`.
#[test]
fn known_drifts_agree() {
    for body in [
        "dist ^ 4",
        "sqdist ^ 3 + dot ^ 5 - xnorm ^ -1",
        "sigmoid(-dist)",
        "exp(-dist / L)",
        "tanh(dot) * pow(znorm, 2)",
        "max(log(dot), 0.0) + relu(log(dot))",
        "(1 + sqrt(3) * dist / L) * exp(-sqrt(3) * dist / L)",
        "(dot + 1.0) ^ 3",
        "dist - dist + 0.0 * log(-dist)",
        "1.0 / (-0.0 * dot)",
    ] {
        let f = F::Const(Box::leak(body.to_string().into_boxed_str()));
        assert!(engines_agree(&f).is_some(), "`{body}` is a valid kernel");
    }
}

//! The embedding example (`cargo run --example embed`) runs, and its own
//! assertions hold: Rust arrays in, a host function called and checked,
//! source and a file run, arrays back out.

#[path = "../examples/embed.rs"]
mod embed;

#[test]
fn the_embedding_example_runs() {
    embed::main();
}

use std::path::Path;

use flx::diag::Diag;
use flx::{Options, Session, StdHost, Value};

fn session() -> Session {
    Session::new(StdHost::new(std::io::sink()), &Options::default())
}

fn error_code(s: &mut Session, src: &str) -> String {
    let d = s
        .run_source("t.flx", src, Path::new("."))
        .expect_err("fails");
    d[0].code.to_string()
}

#[test]
fn host_functions_are_checked_and_called_like_builtins() {
    let mut s = session();
    s.define("scale", "x, by=2.0, *rest, **named", "x * by.", |a| {
        if !a.rest.is_empty() || !a.kwargs.is_empty() {
            return Err(Diag::new("test::extra", "extra arguments").at(a.call));
        }
        Ok(Value::from(a.tensor(0)?.mapv(|v| v * a.f64(1).unwrap())))
    })
    .expect("a new name");
    assert_eq!(
        s.define("exp", "x", "", |_| Ok(Value::None)).unwrap_err(),
        "`exp` is already a builtin"
    );
    assert!(s.define("let", "x", "", |_| Ok(Value::None)).is_err());
    assert!(s.define("two words", "x", "", |_| Ok(Value::None)).is_err());
    assert!(s
        .define("bad_sig", "x=oops", "", |_| Ok(Value::None))
        .is_err());

    s.set("v", ndarray::array![1.0, 2.0]);
    s.run_source("t.flx", "let w = scale(v, by: 3.0)", Path::new("."))
        .expect("runs");
    assert_eq!(
        s.get("w").and_then(|w| w.to_array()).unwrap(),
        ndarray::array![3.0, 6.0].into_dyn()
    );
    // Named arguments it does not take, wrong types, its own errors, and grad.
    assert_eq!(
        error_code(&mut s, "scale(v, nope: 1, by: 2, by: 3)"),
        "flx::call::duplicate_arg"
    );
    assert_eq!(error_code(&mut s, "scale(\"text\")"), "flx::type::argument");
    assert_eq!(error_code(&mut s, "scale(v, 1.0, 2.0)"), "test::extra");
    assert_eq!(
        error_code(&mut s, "grad(|x| sum(scale(x)))(v)"),
        "flx::grad::not_differentiable"
    );
    // `check` knows its signature without running anything.
    assert!(s.check_source("c.flx", "scale()", Path::new(".")).is_err());
    assert!(
        s.check_source("c.flx", "scale(v, bye: 1)", Path::new("."))
            .is_ok(),
        "**named takes any name"
    );
}

#[test]
fn values_cross_in_both_directions() {
    let mut s = session();
    s.set("n", 3i64);
    s.set("x", 2.5);
    s.set("on", true);
    s.set("name", "flx");
    s.set("cube", ndarray::Array3::<f64>::ones((2, 3, 4)));
    s.set(
        "r",
        Value::record([
            ("a", Value::from(1i64)),
            ("b", Value::list([Value::from(1.0), Value::from(2.0)])),
        ]),
    );
    s.run_source(
        "t.flx",
        "let out = (n * x, on, name + \"!\", shape(cube), r.a + sum(r.b))\nlet m = [r.b, r.b]",
        Path::new("."),
    )
    .expect("runs");
    let Some(Value::Tuple(t)) = s.get("out") else {
        panic!("a tuple")
    };
    assert!(matches!(t[0], Value::Float(f) if f == 7.5));
    assert!(matches!(&t[2], Value::Str(s) if s.as_str() == "flx!"));
    assert_eq!(
        s.get("m").and_then(|m| m.to_array()).unwrap().shape(),
        [2, 2]
    );
    assert_eq!(Value::from(4.0).to_array().unwrap().ndim(), 0);
    assert!(Value::from("text").to_array().is_none());
    let ragged = Value::list([Value::from(ndarray::array![1.0, 2.0]), Value::from(1.0)]);
    assert!(ragged.to_array().is_none());
}

//! The Rust functions generated code calls. Generated code cannot call a Rust
//! `fn` directly (its ABI is unspecified), so it calls these `extern "C"`
//! trampolines with the `fn` pointer as the first argument: the JIT then runs
//! the very function the interpreter runs (`prim`'s), with the same result.

pub type F1 = fn(f64) -> f64;
pub type F2 = fn(f64, f64) -> f64;

/// # Safety
/// `f` must be an `F1` as a `usize`.
pub unsafe extern "C" fn call1(f: usize, x: f64) -> f64 {
    let f: F1 = std::mem::transmute(f);
    f(x)
}

/// # Safety
/// `f` must be an `F2` as a `usize`.
pub unsafe extern "C" fn call2(f: usize, x: f64, y: f64) -> f64 {
    let f: F2 = std::mem::transmute(f);
    f(x, y)
}

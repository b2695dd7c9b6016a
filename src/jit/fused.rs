//! A chain of elementwise operations over tensors and numbers, such as
//! `exp(-(a - b) ^ 2 / s) * c`, as one loop: every element of the result is
//! computed from its inputs in registers, with no tensor per operation. The
//! operations are primitives (`prim`), as the interpreter applies them to
//! tensors, so the result is bitwise the interpreter's. `eval::fused`
//! decides what is a chain and lays out the inputs.

use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};

use super::lanes::{Lanes, G};
use super::{Code, PTR};
use crate::prim::{Binary, Unary};

/// One operation of a chain, in postfix order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// The next input: consecutive elements, or one number `repeated` for every element.
    Input { repeated: bool },
    /// An elementwise primitive of two operands (arithmetic or comparison).
    Binary(Binary),
    /// `^ p` for a literal `p` (its bits), as `prim::math::pow` computes it.
    PowConst(u64),
    /// An elementwise primitive of one operand (`-x`, `exp(x)`, ...).
    Unary(Unary),
}

/// `chain(inputs, out, n)`: `out[i]` for `i` in `0..n`; `inputs[k]` points at
/// input k's first element.
type ChainFn = unsafe extern "C" fn(*const *const f64, *mut f64, usize);

/// Compile a chain; `steps` must leave exactly one value.
pub fn compile(steps: &[Step]) -> Result<Code, String> {
    super::compile(&[PTR, PTR, I64], &[], |b, cc| {
        let entry = b.current_block().expect("entry");
        let [inputs, out, n] = b.block_params(entry).try_into().expect("3 params");
        let flags = MemFlagsData::new().with_notrap();
        let mut pointers = Vec::new();
        for s in steps {
            if let Step::Input { repeated } = *s {
                let k = pointers.len() as i32;
                let p = b.ins().load(PTR, flags, inputs, 8 * k);
                // A repeated input is read once, before the loop.
                pointers.push((
                    repeated,
                    if repeated {
                        b.ins().load(F64, flags, p, 0)
                    } else {
                        p
                    },
                ));
            }
        }
        let zero = b.ins().iconst(I64, 0);
        super::lanes::columns(b, cc, zero, n, |l, i| {
            let y = point(l, steps, &pointers, i);
            l.store(&y, out, i);
        });
        b.ins().return_(&[]);
        Ok(())
    })
}

/// Run a compiled chain over `out.len()` elements.
///
/// # Safety
/// `code` was compiled by `compile` for a chain whose inputs are `inputs`, in
/// order; each consecutive input has at least `out.len()` elements and each
/// repeated one at least one.
pub unsafe fn run(code: &Code, inputs: &[*const f64], out: &mut [f64]) {
    let f: ChainFn = std::mem::transmute(code.ptr);
    f(inputs.as_ptr(), out.as_mut_ptr(), out.len());
}

/// The chain at the elements of one group of `l`, from `i`.
fn point(l: &mut Lanes, steps: &[Step], pointers: &[(bool, Value)], i: Value) -> G {
    let mut stack: Vec<G> = Vec::new();
    let mut next_input = pointers.iter();
    for s in steps {
        let y = match *s {
            Step::Input { .. } => match *next_input.next().expect("an input per step") {
                (true, x) => l.splat(x),
                (false, p) => l.load(p, i),
            },
            Step::Binary(op) => {
                let y = stack.pop().expect("two operands");
                let x = stack.pop().expect("two operands");
                l.binary(op, &x, &y)
            }
            Step::PowConst(p) => {
                let x = stack.pop().expect("an operand");
                l.pow_const(&x, f64::from_bits(p))
            }
            Step::Unary(u) => {
                let x = stack.pop().expect("an operand");
                l.unary(u, &x)
            }
        };
        stack.push(y);
    }
    stack.pop().expect("one result")
}

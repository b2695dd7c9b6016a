//! A kernel body's straight-line program (built and interpreted by
//! `kernel::tape`) as machine code: one function per program that runs a
//! row of the geometry matrices, reading `x M zᵀ` and the squared norms and
//! writing every output, eight columns (four `f64x2`) at a time, with no
//! buffer in between. The operations are the program's, in its order.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};

use super::lanes::{Lanes, G};
use super::{Code, PTR};
use crate::prim::{Binary, Unary};

/// An operand: a register or a constant.
#[derive(Clone, Copy, Debug)]
pub enum Src {
    Reg(u16),
    Const(f64),
}

/// One operation, writing its result to a new register.
#[derive(Clone, Copy, Debug)]
pub enum Instr {
    Unary(Unary, u16, u16),
    Binary(Binary, Src, Src, u16),
}

/// A program over the geometry of one pair (x, z): registers are filled
/// with the geometry quantities in `geo` (dist, sqdist, dot, xnorm, znorm,
/// l1dist, where read), then `instrs` run in order, and `outputs` are the results.
#[derive(Debug)]
pub struct RowProgram {
    pub instrs: Vec<Instr>,
    pub geo: [Option<u16>; 6],
    pub outputs: Vec<Src>,
}

/// `row(xn2, zn2, l1, outs, from, m)`: columns `from..m` of one row; `outs[0]`
/// holds `x M zᵀ` on entry, `l1` the row's l1 distances (where read).
type RowFn = unsafe extern "C" fn(f64, *const f64, *const f64, *const *mut f64, usize, usize);

pub fn compile(tape: &RowProgram) -> Result<Code, String> {
    super::compile(&[F64, PTR, PTR, PTR, I64, I64], &[], |b, cc| {
        let entry = b.current_block().expect("entry");
        let [xn2, zn2, l1, outs, from, m] = b.block_params(entry).try_into().expect("6 params");
        let flags = MemFlagsData::new().with_notrap();
        let out_ptrs: Vec<Value> = (0..tape.outputs.len())
            .map(|k| b.ins().load(PTR, flags, outs, 8 * k as i32))
            .collect();
        super::lanes::columns(b, cc, from, m, |l, j| {
            point(l, tape, [xn2, zn2, l1], &out_ptrs, j)
        });
        b.ins().return_(&[]);
        Ok(())
    })
}

/// Run the compiled tape over columns `from..` of one row (`out[k]` is row i
/// of output k; `out[0]` holds `x M zᵀ` on entry; `l1` is the row of l1
/// distances, empty where the tape does not read them).
pub fn run_row(
    code: &Code,
    xn2: f64,
    zn2: &[f64],
    l1: &[f64],
    from: usize,
    out: &mut [&mut [f64]],
) {
    assert!(out.iter().all(|o| o.len() == zn2.len()));
    assert!(l1.is_empty() || l1.len() == zn2.len());
    let ptrs: Vec<*mut f64> = out.iter_mut().map(|o| o.as_mut_ptr()).collect();
    // SAFETY: `code` was compiled by `compile` for a tape with `out.len()`
    // outputs; it touches columns from..zn2.len() of each, all in bounds.
    unsafe {
        let f: RowFn = std::mem::transmute(code.ptr);
        f(
            xn2,
            zn2.as_ptr(),
            l1.as_ptr(),
            ptrs.as_ptr(),
            from,
            zn2.len(),
        );
    }
}

/// The tape at the columns of one group of `l`, from `j`.
fn point(l: &mut Lanes, tape: &RowProgram, [xn2, zn2, l1]: [Value; 3], outs: &[Value], j: Value) {
    let mut regs: Vec<Option<G>> = Vec::new();
    let set = |regs: &mut Vec<Option<G>>, r: u16, v: G| {
        let r = r as usize;
        if regs.len() <= r {
            regs.resize(r + 1, None);
        }
        regs[r] = Some(v);
    };
    let [dist, sqdist, dot_reg, xnorm, znorm, l1dist] = tape.geo;
    let dot = l.load(outs[0], j);
    let z = if dist.is_some() || sqdist.is_some() || znorm.is_some() {
        Some(l.load(zn2, j))
    } else {
        None
    };
    if dist.is_some() || sqdist.is_some() {
        // As `kernel::tape`'s geometry: ((-2 x·z + |x|²) + |z|²) clamped at 0.
        let m2 = l.c(-2.0);
        let s = l.mul(&m2, &dot);
        let x2 = l.splat(xn2);
        let s = l.add(&s, &x2);
        let s = l.add(&s, z.as_ref().expect("loaded"));
        let zero = l.c(0.0);
        let s = l.choose(FloatCC::GreaterThan, &s, &zero, &s, &zero);
        if let Some(r) = dist {
            let d = l.sqrt(&s);
            set(&mut regs, r, d);
        }
        if let Some(r) = sqdist {
            set(&mut regs, r, s);
        }
    }
    if let Some(r) = dot_reg {
        set(&mut regs, r, dot);
    }
    if let Some(r) = xnorm {
        let s = l.b.ins().sqrt(xn2);
        let s = l.splat(s);
        set(&mut regs, r, s);
    }
    if let Some(r) = znorm {
        let s = l.sqrt(z.as_ref().expect("loaded"));
        set(&mut regs, r, s);
    }
    if let Some(r) = l1dist {
        let v = l.load(l1, j);
        set(&mut regs, r, v);
    }
    let reg = |regs: &Vec<Option<G>>, r: u16| regs[r as usize].clone().expect("defined before use");
    for ins in &tape.instrs {
        match *ins {
            Instr::Unary(f, a, r) => {
                let x = reg(&regs, a);
                let y = l.unary(f, &x);
                set(&mut regs, r, y);
            }
            Instr::Binary(op, a, bb, r) => {
                let x = match a {
                    Src::Reg(a) => reg(&regs, a),
                    Src::Const(c) => l.c(c),
                };
                let y = match (op, bb) {
                    (Binary::Pow, Src::Const(p)) => l.pow_const(&x, p),
                    (_, Src::Reg(bb)) => l.binary(op, &x, &reg(&regs, bb)),
                    (_, Src::Const(c)) => {
                        let c = l.c(c);
                        l.binary(op, &x, &c)
                    }
                };
                set(&mut regs, r, y);
            }
        }
    }
    for (k, o) in tape.outputs.iter().enumerate() {
        let v = match *o {
            Src::Reg(r) => reg(&regs, r),
            Src::Const(c) => l.c(c),
        };
        l.store(&v, outs[k], j);
    }
}

//! Floating-point operations emitted either for one `f64` or for a group of
//! `f64x2` vectors (two lanes each, the widest vector Cranelift has on
//! x86-64). Each operation is emitted for every member of the group before
//! the next, so that independent dependency chains (such as the polynomial
//! in `exp`) overlap in the CPU instead of waiting on each other. Each
//! operation is the IEEE operation the interpreter performs, so every width
//! gives the interpreter's results; what has no instruction calls Rust (`math`).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, F64X2, I64, I64X2};
use cranelift_codegen::ir::{
    AbiParam, BlockArg, InstBuilder, MemFlagsData, SigRef, Signature, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;

use super::math::{self, F1, F2};
use super::PTR;
use crate::prim::{self, Binary, Unary};

/// One value per member of the group.
pub type G = Vec<Value>;

/// Vectors per step of a main loop: four independent `f64x2` chains.
const WIDTH: usize = 4;

/// A loop over the elements `from..to`: `point` emits the work at index `j`
/// for groups of `2 × WIDTH` elements, then for the rest one at a time.
pub fn columns(
    b: &mut FunctionBuilder,
    cc: CallConv,
    from: Value,
    to: Value,
    mut point: impl FnMut(&mut Lanes, Value),
) {
    let mut j = from;
    for vector in [true, false] {
        let head = b.create_block();
        let body = b.create_block();
        let done = b.create_block();
        let at = b.append_block_param(head, I64);
        let rest = b.append_block_param(done, I64);
        b.ins().jump(head, &[BlockArg::Value(j)]);
        b.switch_to_block(head);
        let (width, step) = if vector { (WIDTH, 2 * WIDTH) } else { (1, 1) };
        let next = b.ins().iadd_imm_s(at, step as i64);
        let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, next, to);
        b.ins().brif(fits, body, &[], done, &[BlockArg::Value(at)]);
        b.switch_to_block(body);
        point(&mut Lanes::new(b, vector, width, cc), at);
        b.ins().jump(head, &[BlockArg::Value(next)]);
        b.switch_to_block(done);
        j = rest;
    }
}

pub struct Lanes<'a, 'b> {
    pub b: &'a mut FunctionBuilder<'b>,
    /// `F64` or `F64X2`.
    ty: Type,
    width: usize,
    cc: CallConv,
    sigs: [Option<SigRef>; 2],
}

impl<'a, 'b> Lanes<'a, 'b> {
    /// `width` values of two lanes each (`vector`), or of one.
    pub fn new(b: &'a mut FunctionBuilder<'b>, vector: bool, width: usize, cc: CallConv) -> Self {
        Lanes {
            b,
            ty: if vector { F64X2 } else { F64 },
            width,
            cc,
            sigs: [None, None],
        }
    }

    fn lanes(&self) -> usize {
        if self.ty == F64X2 {
            2
        } else {
            1
        }
    }

    /// A scalar value in every lane.
    pub fn splat(&mut self, s: Value) -> G {
        let v = if self.ty == F64X2 {
            self.b.ins().splat(F64X2, s)
        } else {
            s
        };
        vec![v; self.width]
    }

    pub fn c(&mut self, x: f64) -> G {
        if self.ty == F64X2 {
            // A vector constant is one load, which arithmetic can take as an operand.
            let bytes: Vec<u8> = [x, x].iter().flat_map(|v| v.to_le_bytes()).collect();
            let k = self.b.func.dfg.constants.insert(bytes.into());
            let v = self.b.ins().vconst(F64X2, k);
            return vec![v; self.width];
        }
        let s = self.b.ins().f64const(x);
        self.splat(s)
    }

    /// The elements at `base[index..index + step]`.
    pub fn load(&mut self, base: Value, index: Value) -> G {
        let at = self.address(base, index);
        let bytes = 8 * self.lanes() as i32;
        (0..self.width as i32)
            .map(|k| {
                self.b
                    .ins()
                    .load(self.ty, MemFlagsData::new().with_notrap(), at, k * bytes)
            })
            .collect()
    }

    pub fn store(&mut self, v: &G, base: Value, index: Value) {
        let at = self.address(base, index);
        let bytes = 8 * self.lanes() as i32;
        for (k, &x) in v.iter().enumerate() {
            self.b
                .ins()
                .store(MemFlagsData::new().with_notrap(), x, at, k as i32 * bytes);
        }
    }

    fn address(&mut self, base: Value, index: Value) -> Value {
        let offset = self.b.ins().ishl_imm_u(index, 3);
        self.b.ins().iadd(base, offset)
    }

    fn map1(&mut self, x: &G, f: impl Fn(&mut FunctionBuilder, Value) -> Value) -> G {
        x.iter().map(|&x| f(self.b, x)).collect()
    }

    fn map2(&mut self, x: &G, y: &G, f: impl Fn(&mut FunctionBuilder, Value, Value) -> Value) -> G {
        x.iter().zip(y).map(|(&x, &y)| f(self.b, x, y)).collect()
    }

    pub fn add(&mut self, x: &G, y: &G) -> G {
        self.map2(x, y, |b, x, y| b.ins().fadd(x, y))
    }
    pub fn sub(&mut self, x: &G, y: &G) -> G {
        self.map2(x, y, |b, x, y| b.ins().fsub(x, y))
    }
    pub fn mul(&mut self, x: &G, y: &G) -> G {
        self.map2(x, y, |b, x, y| b.ins().fmul(x, y))
    }
    pub fn div(&mut self, x: &G, y: &G) -> G {
        self.map2(x, y, |b, x, y| b.ins().fdiv(x, y))
    }
    pub fn neg(&mut self, x: &G) -> G {
        self.map1(x, |b, x| b.ins().fneg(x))
    }
    pub fn sqrt(&mut self, x: &G) -> G {
        self.map1(x, |b, x| b.ins().sqrt(x))
    }
    pub fn abs(&mut self, x: &G) -> G {
        self.map1(x, |b, x| b.ins().fabs(x))
    }

    /// `then` in the lanes where `x cond y`, else `otherwise`.
    pub fn choose(&mut self, cond: FloatCC, x: &G, y: &G, then: &G, otherwise: &G) -> G {
        let vector = self.ty == F64X2;
        (0..self.width)
            .map(|k| {
                let c = self.b.ins().fcmp(cond, x[k], y[k]);
                if vector {
                    let mask = self.b.ins().bitcast(F64X2, MemFlagsData::new(), c);
                    self.b.ins().bitselect(mask, then[k], otherwise[k])
                } else {
                    self.b.ins().select(c, then[k], otherwise[k])
                }
            })
            .collect()
    }

    /// An elementwise primitive of one number, as `prim` computes it: an
    /// instruction where one computes it exactly, else a call of its function.
    pub fn unary(&mut self, u: Unary, x: &G) -> G {
        match u {
            Unary::Neg => self.neg(x),
            Unary::Exp => self.exp(x),
            Unary::Sqrt => self.sqrt(x),
            Unary::Abs => self.abs(x),
            Unary::Relu => {
                let zero = self.c(0.0);
                self.choose(FloatCC::GreaterThan, x, &zero, x, &zero)
            }
            Unary::Log
            | Unary::Sin
            | Unary::Cos
            | Unary::Tanh
            | Unary::Sigmoid
            | Unary::Sign
            | Unary::Floor
            | Unary::Ceil
            | Unary::Round => self.call1(u.function(), x),
        }
    }

    /// An elementwise primitive of two numbers, as `prim` computes it
    /// (comparisons give 1 or 0, as on tensors).
    pub fn binary(&mut self, op: Binary, x: &G, y: &G) -> G {
        let compare = |l: &mut Self, cc| {
            let (one, zero) = (l.c(1.0), l.c(0.0));
            l.choose(cc, x, y, &one, &zero)
        };
        match op {
            Binary::Add => self.add(x, y),
            Binary::Sub => self.sub(x, y),
            Binary::Mul => self.mul(x, y),
            Binary::Div => self.div(x, y),
            Binary::Eq => compare(self, FloatCC::Equal),
            Binary::Ne => compare(self, FloatCC::NotEqual),
            Binary::Lt => compare(self, FloatCC::LessThan),
            Binary::Le => compare(self, FloatCC::LessThanOrEqual),
            Binary::Gt => compare(self, FloatCC::GreaterThan),
            Binary::Ge => compare(self, FloatCC::GreaterThanOrEqual),
            Binary::SafeDiv => {
                let q = self.div(x, y);
                let ay = self.abs(y);
                let (tiny, zero) = (self.c(prim::math::ZERO_DIST), self.c(0.0));
                self.choose(FloatCC::LessThan, &ay, &tiny, &zero, &q)
            }
            Binary::Rem | Binary::FloorDiv | Binary::Pow | Binary::Max | Binary::Min => {
                self.call2(op.function(), x, y)
            }
        }
    }

    /// `x ^ p` for a constant `p`, with the cases of `prim::math::pow`.
    pub fn pow_const(&mut self, x: &G, p: f64) -> G {
        if p == 2.0 {
            self.mul(x, x)
        } else if p == 1.0 {
            x.clone()
        } else if p == 3.0 {
            let x2 = self.mul(x, x);
            self.mul(&x2, x)
        } else if p == 0.5 {
            self.sqrt(x)
        } else {
            let p = self.c(p);
            self.call2(prim::math::pow, x, &p)
        }
    }

    pub fn call1(&mut self, f: F1, x: &G) -> G {
        (0..self.width)
            .map(|k| self.per_lane(&[x[k]], |l, a| l.call_scalar(0, f as usize, a)))
            .collect()
    }

    pub fn call2(&mut self, f: F2, x: &G, y: &G) -> G {
        (0..self.width)
            .map(|k| self.per_lane(&[x[k], y[k]], |l, a| l.call_scalar(1, f as usize, a)))
            .collect()
    }

    /// Call the trampoline for a Rust function of `arity + 1` floats on scalars.
    fn call_scalar(&mut self, arity: usize, f: usize, args: &[Value]) -> Value {
        let sig = *self.sigs[arity].get_or_insert_with(|| {
            let mut s = Signature::new(self.cc);
            s.params.push(AbiParam::new(PTR));
            s.params.extend((0..=arity).map(|_| AbiParam::new(F64)));
            s.returns.push(AbiParam::new(F64));
            self.b.import_signature(s)
        });
        let trampoline = if arity == 0 {
            math::call1 as *const () as usize
        } else {
            math::call2 as *const () as usize
        };
        let callee = self.b.ins().iconst(PTR, trampoline as i64);
        let fptr = self.b.ins().iconst(PTR, f as i64);
        let mut all = vec![fptr];
        all.extend_from_slice(args);
        let call = self.b.ins().call_indirect(sig, callee, &all);
        self.b.inst_results(call)[0]
    }

    /// Apply a scalar emitter to each lane of one value and reassemble.
    fn per_lane(&mut self, args: &[Value], f: impl Fn(&mut Self, &[Value]) -> Value) -> Value {
        if self.ty == F64 {
            return f(self, args);
        }
        let mut out: Option<Value> = None;
        for lane in 0..2u8 {
            let xs: Vec<Value> = args
                .iter()
                .map(|&a| self.b.ins().extractlane(a, lane))
                .collect();
            let y = f(self, &xs);
            out = Some(match out {
                None => self.b.ins().scalar_to_vector(F64X2, y),
                Some(v) => self.b.ins().insertlane(v, y, lane),
            });
        }
        out.expect("two lanes")
    }

    /// `exp` exactly as `prim::math::exp` computes it: the same reduction
    /// and polynomial, operation for operation, and `f64::exp` outside
    /// [-708, 709] (in a cold block, for the whole group).
    fn exp(&mut self, x: &G) -> G {
        use prim::math::exp_consts::*;
        // Lanes outside [LO, HI] compute garbage here and take the cold block's value.
        let (lo, hi) = (self.c(LO), self.c(HI));
        let log2e = self.c(LOG2E);
        let shifter = self.c(SHIFTER);
        let t = self.mul(x, &log2e);
        let t = self.add(&t, &shifter);
        let k = self.sub(&t, &shifter);
        let (ln2_hi, ln2_lo) = (self.c(LN2_HI), self.c(LN2_LO));
        let khi = self.mul(&k, &ln2_hi);
        let klo = self.mul(&k, &ln2_lo);
        let r = self.sub(x, &khi);
        let r = self.sub(&r, &klo);
        let mut p = self.c(C[12]);
        for &c in C[..12].iter().rev() {
            let pr = self.mul(&p, &r);
            let c = self.c(c);
            p = self.add(&pr, &c);
        }
        let ity = if self.ty == F64X2 { I64X2 } else { I64 };
        let int = |l: &mut Self, bits: i64| {
            let s = l.b.ins().iconst(I64, bits);
            if ity == I64X2 {
                l.b.ins().splat(I64X2, s)
            } else {
                s
            }
        };
        let sbits = int(self, SHIFTER.to_bits() as i64);
        let bias = int(self, 1023);
        let ty = self.ty;
        let scale: G = t
            .iter()
            .map(|&t| {
                let tbits = self.b.ins().bitcast(ity, MemFlagsData::new(), t);
                let kbits = self.b.ins().isub(tbits, sbits);
                let e = self.b.ins().iadd(kbits, bias);
                let e = self.b.ins().ishl_imm_u(e, 52);
                self.b.ins().bitcast(ty, MemFlagsData::new(), e)
            })
            .collect();
        let y = self.mul(&p, &scale);

        let mut inside = None;
        for k in 0..self.width {
            let ge = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x[k], lo[k]);
            let le = self.b.ins().fcmp(FloatCC::LessThanOrEqual, x[k], hi[k]);
            let both = self.b.ins().band(ge, le);
            inside = Some(match inside {
                None => both,
                Some(acc) => self.b.ins().band(acc, both),
            });
        }
        let mut inside = inside.expect("a member");
        if ty == F64X2 {
            inside = self.b.ins().vall_true(inside);
        }
        let slow = self.b.create_block();
        let join = self.b.create_block();
        let result: G = (0..self.width)
            .map(|_| self.b.append_block_param(join, ty))
            .collect();
        self.b.set_cold_block(slow);
        let args: Vec<BlockArg> = y.iter().map(|&v| BlockArg::Value(v)).collect();
        self.b.ins().brif(inside, join, &args, slow, &[]);
        self.b.switch_to_block(slow);
        let fixed: Vec<BlockArg> = (0..self.width)
            .map(|k| {
                BlockArg::Value(self.per_lane(&[x[k], y[k]], |l, xy| {
                    let lo = l.b.ins().f64const(LO);
                    let hi = l.b.ins().f64const(HI);
                    let ge = l.b.ins().fcmp(FloatCC::GreaterThanOrEqual, xy[0], lo);
                    let le = l.b.ins().fcmp(FloatCC::LessThanOrEqual, xy[0], hi);
                    let inside = l.b.ins().band(ge, le);
                    let libm = l.call_scalar(0, f64::exp as F1 as usize, &xy[..1]);
                    l.b.ins().select(inside, xy[1], libm)
                }))
            })
            .collect();
        self.b.ins().jump(join, &fixed);
        self.b.switch_to_block(join);
        result
    }
}

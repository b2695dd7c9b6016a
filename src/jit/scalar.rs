//! `fn`s over numbers compiled to machine code on their first call, once per
//! combination of argument types.
//!
//! A body qualifies when it uses only Int, Float and Bool values, arithmetic,
//! comparisons, `and`/`or`/`not`, the math builtins of one number, `int`,
//! `float`, `len`/`rows`/`cols` of a tensor argument, `let`, assignment,
//! `if`, `while`, `for` over a range, `break`/`continue`/`return`, and reads
//! and writes of single elements of tensor arguments. Each variable must keep
//! one type (`let s = 0` followed by `s += 0.5` does not qualify: Python
//! semantics would make `s` an Int or a Float depending on the data). Anything
//! else runs in the interpreter.
//!
//! The compiled code never reports an error itself: where the interpreter
//! would stop (integer overflow, an index out of range, modulo by zero, the
//! step limit, Ctrl-C) it gives up ("bails") and the interpreter runs the call
//! again from the start, producing exactly its own diagnostic. That is sound
//! because such a call has no effects: it cannot print, and the tensors it
//! writes are its own copies (copy on write), which are put back on a bail.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F64, I64, I8};
use cranelift_codegen::ir::{
    AbiParam, Block as Label, BlockArg, InstBuilder, MemFlagsData, Signature, StackSlotData,
    StackSlotKind, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, Variable};

use super::lanes::Lanes;
use super::{Code, PTR};
use crate::prim::{math, Binary, Unary};
use crate::signature::Builtins;
use crate::syntax::ast::*;

/// The type of an argument or a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Int,
    Float,
    Bool,
    /// A tensor argument of this many axes (1 or 2).
    Tensor(u8),
}

/// What a compiled call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    None,
    Int,
    Float,
    Bool,
    /// The (possibly written) tensor argument with this index.
    Param(usize),
}

pub struct Compiled {
    code: Code,
    pub ret: Ret,
    /// Whether the body writes elements of each argument.
    pub writes: Vec<bool>,
}

/// `f(args, out, fuel, interrupt) -> status`: `args` holds each argument as
/// one word, a tensor as its data pointer, lengths and strides (in elements);
/// the result goes to `out`; `fuel` counts loop iterations down (and is
/// written back); status 0 is success, 1 a bail.
type EntryFn = unsafe extern "C" fn(*const u64, *mut u64, *mut i64, *const u8) -> i64;

/// Why a body does not qualify (kept for debugging; never shown to users).
type Unsupported = &'static str;
type R<T> = Result<T, Unsupported>;

/// Compile `def` for arguments of types `tys`, or say why it does not qualify.
/// `builtins` names the builtins the body's calls resolved to.
pub fn compile(def: &FnDef, tys: &[Ty], builtins: &Builtins) -> Result<Compiled, String> {
    let mut outcome = None;
    let code = super::compile(&[PTR, PTR, PTR, PTR], &[I64], |b, cc| {
        outcome = Some(Fx::build(b, cc, def, tys, builtins)?);
        Ok(())
    })?;
    let (ret, writes) = outcome.expect("built");
    Ok(Compiled { code, ret, writes })
}

impl Compiled {
    /// Run with packed arguments (see `EntryFn`). `None`: the call bailed.
    ///
    /// # Safety
    /// `args` must be packed for the argument types this was compiled for,
    /// with tensor pointers valid (and unshared where `writes`) for the call.
    pub unsafe fn call(&self, args: &[u64], fuel: &mut i64, interrupt: *const u8) -> Option<u64> {
        let f: EntryFn = std::mem::transmute(self.code.ptr);
        let mut out = 0u64;
        (f(args.as_ptr(), &mut out, fuel, interrupt) == 0).then_some(out)
    }
}

/// A value of an expression.
#[derive(Clone, Copy)]
enum Out {
    Val(Value, Ty),
    /// `none` (statements, `if` without `else`).
    Unit,
    /// Control left (break, continue, return): the current block is unreachable.
    Never,
}

#[derive(Clone)]
struct TensorArg {
    param: usize,
    ptr: Value,
    dims: Vec<Value>,
    strides: Vec<Value>,
}

struct Fx<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    cc: CallConv,
    builtins: &'a Builtins,
    /// A variable per (frame slot, type).
    vars: HashMap<(u32, Ty), Variable>,
    /// The type each frame slot holds at this point of the program.
    env: HashMap<u32, Ty>,
    tensors: HashMap<u32, TensorArg>,
    writes: Vec<bool>,
    /// (continue, break) targets of the enclosing loops.
    loops: Vec<(Label, Label)>,
    bail: Label,
    ret: Option<Ret>,
    out: Value,
    fuel: Variable,
    fuel_ptr: Value,
    interrupt: Value,
    /// A byte that fallible helpers set on failure.
    failed: Value,
}

fn cl(ty: Ty) -> Type {
    match ty {
        Ty::Int => I64,
        Ty::Float => F64,
        Ty::Bool => I8,
        Ty::Tensor(_) => PTR,
    }
}

impl<'a, 'b> Fx<'a, 'b> {
    fn build(
        b: &'a mut FunctionBuilder<'b>,
        cc: CallConv,
        def: &FnDef,
        tys: &[Ty],
        builtins: &'a Builtins,
    ) -> Result<(Ret, Vec<bool>), String> {
        if def.params.len() != tys.len() || !def.captures.borrow().is_empty() {
            return Err("captures".into());
        }
        let entry = b.current_block().expect("entry");
        let [args, out, fuel_ptr, interrupt] = b.block_params(entry).try_into().expect("4");
        let flags = MemFlagsData::new().with_notrap();
        let fuel = b.declare_var(I64);
        let f0 = b.ins().load(I64, flags, fuel_ptr, 0);
        b.def_var(fuel, f0);
        let slot = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 8, 3));
        let failed = b.ins().stack_addr(PTR, slot, 0);
        let bail = b.create_block();
        b.set_cold_block(bail);
        let mut fx = Fx {
            b,
            cc,
            builtins,
            vars: HashMap::new(),
            env: HashMap::new(),
            tensors: HashMap::new(),
            writes: vec![false; tys.len()],
            loops: Vec::new(),
            bail,
            ret: None,
            out,
            fuel,
            fuel_ptr,
            interrupt,
            failed,
        };
        let mut word = 0i32;
        for (i, (p, &ty)) in def.params.iter().zip(tys).enumerate() {
            let Slot::Local(s) = p.name.slot.get() else {
                return Err("captured parameter".into());
            };
            let mut next = |b: &mut FunctionBuilder, t: Type| {
                let v = b.ins().load(t, flags, args, 8 * word);
                word += 1;
                v
            };
            match ty {
                Ty::Tensor(rank) => {
                    let ptr = next(fx.b, PTR);
                    let dims = (0..rank).map(|_| next(fx.b, I64)).collect();
                    let strides = (0..rank).map(|_| next(fx.b, I64)).collect();
                    fx.tensors.insert(
                        s,
                        TensorArg {
                            param: i,
                            ptr,
                            dims,
                            strides,
                        },
                    );
                }
                Ty::Bool => {
                    let v = next(fx.b, I64);
                    let v = fx.b.ins().ireduce(I8, v);
                    fx.bind(s, Ty::Bool, v);
                }
                ty => {
                    let v = next(fx.b, cl(ty));
                    fx.bind(s, ty, v);
                }
            }
        }
        let result = fx.expr(&def.body)?;
        fx.finish_return(result)?;
        fx.b.switch_to_block(bail);
        fx.exit(1);
        Ok((fx.ret.unwrap_or(Ret::None), fx.writes))
    }

    // ---- variables and exits ---------------------------------------------------

    fn bind(&mut self, slot: u32, ty: Ty, v: Value) {
        let var = *self
            .vars
            .entry((slot, ty))
            .or_insert_with(|| self.b.declare_var(cl(ty)));
        self.b.def_var(var, v);
        self.env.insert(slot, ty);
    }

    fn read(&mut self, slot: u32) -> R<(Value, Ty)> {
        let ty = *self
            .env
            .get(&slot)
            .ok_or("unbound or non-scalar variable")?;
        let var = self.vars[&(slot, ty)];
        Ok((self.b.use_var(var), ty))
    }

    /// Leave with `status`, saving the fuel.
    fn exit(&mut self, status: i64) {
        let f = self.b.use_var(self.fuel);
        self.b
            .ins()
            .store(MemFlagsData::new().with_notrap(), f, self.fuel_ptr, 0);
        let s = self.b.ins().iconst(I64, status);
        self.b.ins().return_(&[s]);
    }

    /// The function's value: checked against earlier `return`s, stored, returned.
    fn finish_return(&mut self, v: Out) -> R<()> {
        let ret = match v {
            // The current block is unreachable; it still needs an end.
            Out::Never => {
                self.b.ins().jump(self.bail, &[]);
                return Ok(());
            }
            Out::Unit => Ret::None,
            Out::Val(_, Ty::Int) => Ret::Int,
            Out::Val(_, Ty::Float) => Ret::Float,
            Out::Val(_, Ty::Bool) => Ret::Bool,
            Out::Val(p, Ty::Tensor(_)) => {
                let t = self.tensors.values().find(|t| t.ptr == p);
                Ret::Param(t.ok_or("tensor value")?.param)
            }
        };
        self.returns(ret)?;
        if let Out::Val(v, ty @ (Ty::Int | Ty::Float | Ty::Bool)) = v {
            let v = if ty == Ty::Bool {
                self.b.ins().uextend(I64, v)
            } else {
                v
            };
            self.b
                .ins()
                .store(MemFlagsData::new().with_notrap(), v, self.out, 0);
        }
        self.exit(0);
        Ok(())
    }

    fn returns(&mut self, ret: Ret) -> R<()> {
        match self.ret {
            Some(r) if r != ret => Err("returns of different types"),
            _ => {
                self.ret = Some(ret);
                Ok(())
            }
        }
    }

    /// After a jump: continue emitting into a block nothing reaches.
    fn unreachable(&mut self) -> Out {
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
        Out::Never
    }

    /// Leave through `bail` when `cond` (an I8) is true.
    fn bail_if(&mut self, cond: Value) {
        let ok = self.b.create_block();
        self.b.ins().brif(cond, self.bail, &[], ok, &[]);
        self.b.switch_to_block(ok);
    }

    /// One loop iteration: count down the fuel; every 2^16 iterations look at
    /// the interrupt flag.
    fn tick(&mut self) {
        let f = self.b.use_var(self.fuel);
        let f = self.b.ins().iadd_imm_s(f, -1);
        self.b.def_var(self.fuel, f);
        let out = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, f, 0);
        self.bail_if(out);
        let low = self.b.ins().band_imm_s(f, 0xffff);
        let check = self.b.ins().icmp_imm_s(IntCC::Equal, low, 0);
        let look = self.b.create_block();
        let go_on = self.b.create_block();
        self.b.set_cold_block(look);
        self.b.ins().brif(check, look, &[], go_on, &[]);
        self.b.switch_to_block(look);
        let flag = self
            .b
            .ins()
            .load(I8, MemFlagsData::new().with_notrap(), self.interrupt, 0);
        self.b.ins().brif(flag, self.bail, &[], go_on, &[]);
        self.b.switch_to_block(go_on);
    }

    // ---- expressions --------------------------------------------------------

    fn value(&mut self, e: &Expr) -> R<(Value, Ty)> {
        match self.expr(e)? {
            Out::Val(v, ty) => Ok((v, ty)),
            _ => Err("no value"),
        }
    }

    fn float(&mut self, v: Value, ty: Ty) -> R<Value> {
        match ty {
            Ty::Float => Ok(v),
            Ty::Int => Ok(self.b.ins().fcvt_from_sint(F64, v)),
            _ => Err("not a number"),
        }
    }

    fn expr(&mut self, e: &Expr) -> R<Out> {
        Ok(match &e.kind {
            ExprKind::Int(i) => Out::Val(self.b.ins().iconst(I64, *i), Ty::Int),
            ExprKind::Float(f) => Out::Val(self.b.ins().f64const(*f), Ty::Float),
            ExprKind::Bool(v) => Out::Val(self.b.ins().iconst(I8, *v as i64), Ty::Bool),
            ExprKind::Name(n) => match n.slot.get() {
                Slot::Local(s) => {
                    if let Some(t) = self.tensors.get(&s) {
                        return Ok(Out::Val(t.ptr, Ty::Tensor(t.dims.len() as u8)));
                    }
                    let (v, ty) = self.read(s)?;
                    Out::Val(v, ty)
                }
                Slot::Constant(k) => Out::Val(
                    self.b
                        .ins()
                        .f64const(crate::syntax::ast::CONSTANTS[k as usize].1),
                    Ty::Float,
                ),
                _ => return Err("non-local name"),
            },
            ExprKind::Unary(op, x) => {
                let (v, ty) = self.value(x)?;
                Out::Val(self.unary(*op, v, ty)?, self.unary_ty(*op, ty)?)
            }
            ExprKind::Binary(BinOp::And | BinOp::Or, ..) => self.logic(e)?,
            ExprKind::Binary(op, a, b) => {
                let (x, tx) = self.value(a)?;
                let (y, ty) = self.value(b)?;
                let (v, t) = self.binary(*op, x, tx, y, ty, Some(b))?;
                Out::Val(v, t)
            }
            ExprKind::Call(callee, args) => self.call(callee, args)?,
            ExprKind::Index(x, items) => {
                let t = self.tensor_arg(x)?;
                let addr = self.element(&t, items)?;
                let v = self
                    .b
                    .ins()
                    .load(F64, MemFlagsData::new().with_notrap(), addr, 0);
                Out::Val(v, Ty::Float)
            }
            ExprKind::If(cond, then, otherwise) => self.if_(cond, then, otherwise.as_deref())?,
            ExprKind::Block(b) => self.block(b)?,
            ExprKind::Let(Pattern::Bind(name), value) => {
                let Slot::Local(s) = name.slot.get() else {
                    return Err("captured variable");
                };
                match self.expr(value)? {
                    Out::Val(_, Ty::Tensor(_)) => return Err("tensor variable"),
                    Out::Val(v, ty) => self.bind(s, ty, v),
                    Out::Never => return Ok(Out::Never),
                    Out::Unit => return Err("none variable"),
                }
                Out::Unit
            }
            ExprKind::Assign(place, op, value) => self.assign(place, *op, value)?,
            ExprKind::For(Pattern::Bind(name), iter, body) => self.for_(name, iter, body)?,
            ExprKind::While(cond, body) => self.while_(cond, body)?,
            ExprKind::Break | ExprKind::Continue => {
                let &(cont, brk) = self.loops.last().ok_or("loop control outside a loop")?;
                let to = if matches!(e.kind, ExprKind::Break) {
                    brk
                } else {
                    cont
                };
                self.b.ins().jump(to, &[]);
                self.unreachable()
            }
            ExprKind::Return(v) => {
                match v {
                    None => self.finish_return(Out::Unit)?,
                    Some(x) => match self.expr(x)? {
                        Out::Never => {}
                        other => self.finish_return(other)?,
                    },
                }
                self.unreachable()
            }
            _ => return Err("unsupported expression"),
        })
    }

    fn unary_ty(&self, op: UnOp, ty: Ty) -> R<Ty> {
        match (op, ty) {
            (UnOp::Neg, Ty::Int | Ty::Float) | (UnOp::Not, Ty::Bool) => Ok(ty),
            _ => Err("operand type"),
        }
    }

    fn unary(&mut self, op: UnOp, v: Value, ty: Ty) -> R<Value> {
        Ok(match (op, ty) {
            (UnOp::Neg, Ty::Int) => {
                let min = self.b.ins().icmp_imm_s(IntCC::Equal, v, i64::MIN);
                self.bail_if(min);
                self.b.ins().ineg(v)
            }
            (UnOp::Neg, Ty::Float) => self.b.ins().fneg(v),
            (UnOp::Not, Ty::Bool) => self.b.ins().bxor_imm_s(v, 1),
            _ => return Err("operand type"),
        })
    }

    /// `x op y` as `ops::binary` computes it. `rhs` is the right operand's
    /// expression, for a constant exponent.
    fn binary(
        &mut self,
        op: BinOp,
        x: Value,
        tx: Ty,
        y: Value,
        ty: Ty,
        rhs: Option<&Expr>,
    ) -> R<(Value, Ty)> {
        match (tx, ty) {
            (Ty::Int, Ty::Int) => {
                let checked = |fx: &mut Self, (v, o): (Value, Value)| {
                    fx.bail_if(o);
                    Ok((v, Ty::Int))
                };
                let cmp = |fx: &mut Self, cc| Ok((fx.b.ins().icmp(cc, x, y), Ty::Bool));
                match op {
                    BinOp::Add => {
                        let r = self.b.ins().sadd_overflow(x, y);
                        checked(self, r)
                    }
                    BinOp::Sub => {
                        let r = self.b.ins().ssub_overflow(x, y);
                        checked(self, r)
                    }
                    BinOp::Mul => {
                        let r = self.b.ins().smul_overflow(x, y);
                        checked(self, r)
                    }
                    BinOp::Div => {
                        let fx = self.b.ins().fcvt_from_sint(F64, x);
                        let fy = self.b.ins().fcvt_from_sint(F64, y);
                        Ok((self.b.ins().fdiv(fx, fy), Ty::Float))
                    }
                    BinOp::Rem => match rhs.map(|e| &e.kind) {
                        // Python's `%` by a positive power of two keeps the low bits.
                        Some(ExprKind::Int(p)) if *p > 0 && (*p as u64).is_power_of_two() => {
                            Ok((self.b.ins().band_imm_s(x, p - 1), Ty::Int))
                        }
                        _ => Ok((self.int_rem(x, y), Ty::Int)),
                    },
                    BinOp::FloorDiv => Ok((self.int_floor_div(x, y), Ty::Int)),
                    BinOp::Pow => self.int_pow(x, y),
                    BinOp::Eq => cmp(self, IntCC::Equal),
                    BinOp::Ne => cmp(self, IntCC::NotEqual),
                    BinOp::Lt => cmp(self, IntCC::SignedLessThan),
                    BinOp::Le => cmp(self, IntCC::SignedLessThanOrEqual),
                    BinOp::Gt => cmp(self, IntCC::SignedGreaterThan),
                    BinOp::Ge => cmp(self, IntCC::SignedGreaterThanOrEqual),
                    _ => Err("operator"),
                }
            }
            (Ty::Int | Ty::Float, Ty::Int | Ty::Float) => {
                let x = self.float(x, tx)?;
                let y = self.float(y, ty)?;
                let cmp = |fx: &mut Self, cc| Ok((fx.b.ins().fcmp(cc, x, y), Ty::Bool));
                let mut l = Lanes::new(self.b, false, 1, self.cc);
                let v = match op {
                    BinOp::Add => l.add(&vec![x], &vec![y]),
                    BinOp::Sub => l.sub(&vec![x], &vec![y]),
                    BinOp::Mul => l.mul(&vec![x], &vec![y]),
                    BinOp::Div => l.div(&vec![x], &vec![y]),
                    BinOp::Rem => l.call2(math::rem, &vec![x], &vec![y]),
                    BinOp::FloorDiv => l.call2(math::floor_div, &vec![x], &vec![y]),
                    BinOp::Pow => match rhs.and_then(literal) {
                        Some(p) => l.pow_const(&vec![x], p),
                        None => l.call2(math::pow, &vec![x], &vec![y]),
                    },
                    BinOp::Eq => return cmp(self, FloatCC::Equal),
                    BinOp::Ne => return cmp(self, FloatCC::NotEqual),
                    BinOp::Lt => return cmp(self, FloatCC::LessThan),
                    BinOp::Le => return cmp(self, FloatCC::LessThanOrEqual),
                    BinOp::Gt => return cmp(self, FloatCC::GreaterThan),
                    BinOp::Ge => return cmp(self, FloatCC::GreaterThanOrEqual),
                    _ => return Err("operator"),
                };
                Ok((v[0], Ty::Float))
            }
            (Ty::Bool, Ty::Bool) => match op {
                BinOp::Eq => Ok((self.b.ins().icmp(IntCC::Equal, x, y), Ty::Bool)),
                BinOp::Ne => Ok((self.b.ins().icmp(IntCC::NotEqual, x, y), Ty::Bool)),
                _ => Err("operator on Bool"),
            },
            _ => Err("operand types"),
        }
    }

    /// Bail on a zero divisor and on `i64::MIN` by -1 (which overflows).
    fn check_divisor(&mut self, x: Value, y: Value) {
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, y, 0);
        self.bail_if(zero);
        let m1 = self.b.ins().icmp_imm_s(IntCC::Equal, y, -1);
        let min = self.b.ins().icmp_imm_s(IntCC::Equal, x, i64::MIN);
        let over = self.b.ins().band(m1, min);
        self.bail_if(over);
    }

    /// Python's `//` on Ints: the truncated quotient, one less where the
    /// remainder is not zero and its sign differs from the divisor's.
    fn int_floor_div(&mut self, x: Value, y: Value) -> Value {
        self.check_divisor(x, y);
        let q = self.b.ins().sdiv(x, y);
        let r = self.b.ins().srem(x, y);
        let nonzero = self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
        let signs = self.b.ins().bxor(r, y);
        let differ = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
        let fix = self.b.ins().band(nonzero, differ);
        let less = self.b.ins().iadd_imm_s(q, -1);
        self.b.ins().select(fix, less, q)
    }

    /// Python's `%` on Ints (the divisor's sign).
    fn int_rem(&mut self, x: Value, y: Value) -> Value {
        self.check_divisor(x, y);
        let r = self.b.ins().srem(x, y);
        // r + y where r != 0 and its sign differs from y's.
        let nonzero = self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
        let signs = self.b.ins().bxor(r, y);
        let differ = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
        let fix = self.b.ins().band(nonzero, differ);
        let fixed = self.b.ins().iadd(r, y);
        self.b.ins().select(fix, fixed, r)
    }

    /// Int `^`, a checked power. A negative exponent would make the result a
    /// Float (a type that depends on a value), so it bails to the interpreter.
    fn int_pow(&mut self, x: Value, y: Value) -> R<(Value, Ty)> {
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, y, 0);
        self.bail_if(neg);
        let v = self.helper_i64(int_pow as *const () as usize, &[x, y]);
        Ok((v, Ty::Int))
    }

    /// Call `f(args..., failed) -> i64`, bailing if it sets `failed`.
    fn helper_i64(&mut self, f: usize, args: &[Value]) -> Value {
        let mut s = Signature::new(self.cc);
        s.params.extend(
            args.iter()
                .map(|_| AbiParam::new(I64))
                .chain([AbiParam::new(PTR)]),
        );
        s.returns.push(AbiParam::new(I64));
        let sig = self.b.import_signature(s);
        let callee = self.b.ins().iconst(PTR, f as i64);
        let mut all = args.to_vec();
        all.push(self.failed);
        let zero = self.b.ins().iconst(I8, 0);
        self.b
            .ins()
            .store(MemFlagsData::new().with_notrap(), zero, self.failed, 0);
        let call = self.b.ins().call_indirect(sig, callee, &all);
        let v = self.b.inst_results(call)[0];
        let failed = self
            .b
            .ins()
            .load(I8, MemFlagsData::new().with_notrap(), self.failed, 0);
        self.bail_if(failed);
        v
    }

    fn logic(&mut self, e: &Expr) -> R<Out> {
        let ExprKind::Binary(op, a, b) = &e.kind else {
            unreachable!("logic on a binary expression")
        };
        let (x, tx) = self.value(a)?;
        if tx != Ty::Bool {
            return Err("logic operand");
        }
        let rhs = self.b.create_block();
        let join = self.b.create_block();
        let r = self.b.append_block_param(join, I8);
        // `and` stops at false, `or` at true; either way with the left value.
        if *op == BinOp::And {
            self.b.ins().brif(x, rhs, &[], join, &[BlockArg::Value(x)]);
        } else {
            self.b.ins().brif(x, join, &[BlockArg::Value(x)], rhs, &[]);
        }
        self.b.switch_to_block(rhs);
        let (y, ty) = self.value(b)?;
        if ty != Ty::Bool {
            return Err("logic operand");
        }
        self.b.ins().jump(join, &[BlockArg::Value(y)]);
        self.b.switch_to_block(join);
        Ok(Out::Val(r, Ty::Bool))
    }

    fn call(&mut self, callee: &Expr, args: &[Arg]) -> R<Out> {
        let ExprKind::Name(n) = &callee.kind else {
            return Err("call of an expression");
        };
        let Slot::Builtin(id) = n.slot.get() else {
            return Err("call of a user function");
        };
        if args.iter().any(|a| a.name.is_some()) {
            return Err("named argument");
        }
        let name = self.builtins.name(id);
        let arg = |fx: &mut Self, i: usize| -> R<(Value, Ty)> {
            fx.value(&args.get(i).ok_or("missing argument")?.value)
        };
        Ok(match (Unary::by_builtin(name), name, args.len()) {
            (Some(u), _, 1) => {
                let (v, ty) = arg(self, 0)?;
                let x = self.float(v, ty)?;
                let mut l = Lanes::new(self.b, false, 1, self.cc);
                Out::Val(l.unary(u, &vec![x])[0], Ty::Float)
            }
            (_, "pow", 2) => {
                let (x, tx) = arg(self, 0)?;
                let (y, ty) = arg(self, 1)?;
                let (v, t) = self.binary(BinOp::Pow, x, tx, y, ty, Some(&args[1].value))?;
                Out::Val(v, t)
            }
            (_, "max" | "min", 2) => {
                // As the builtin on two numbers: a Float, nan if either is.
                let (x, tx) = arg(self, 0)?;
                let (y, ty) = arg(self, 1)?;
                let (x, y) = (self.float(x, tx)?, self.float(y, ty)?);
                let op = if name == "max" {
                    Binary::Max
                } else {
                    Binary::Min
                };
                let mut l = Lanes::new(self.b, false, 1, self.cc);
                Out::Val(l.binary(op, &vec![x], &vec![y])[0], Ty::Float)
            }
            (_, "float", 1) => {
                let (v, ty) = arg(self, 0)?;
                let v = match ty {
                    Ty::Bool => {
                        let w = self.b.ins().uextend(I64, v);
                        self.b.ins().fcvt_from_sint(F64, w)
                    }
                    ty => self.float(v, ty)?,
                };
                Out::Val(v, Ty::Float)
            }
            (_, "int", 1) => {
                let (v, ty) = arg(self, 0)?;
                let v = match ty {
                    Ty::Int => v,
                    Ty::Bool => self.b.ins().uextend(I64, v),
                    Ty::Float => {
                        // As `int(x)`: finite and |x| < 9.2e18, else an error (bail).
                        let a = self.b.ins().fabs(v);
                        let limit = self.b.ins().f64const(9.2e18);
                        let ok = self.b.ins().fcmp(FloatCC::LessThan, a, limit);
                        let bad = self.b.ins().bxor_imm_s(ok, 1);
                        self.bail_if(bad);
                        self.b.ins().fcvt_to_sint_sat(I64, v)
                    }
                    Ty::Tensor(_) => return Err("int of a tensor"),
                };
                Out::Val(v, Ty::Int)
            }
            (_, "len" | "rows" | "cols", 1) => {
                let axis = usize::from(name == "cols");
                let t = self.tensor_arg(&args[0].value)?;
                let d = *t.dims.get(axis).ok_or("axis")?;
                Out::Val(d, Ty::Int)
            }
            _ => return Err("builtin"),
        })
    }

    fn tensor_arg(&self, e: &Expr) -> R<TensorArg> {
        match &e.kind {
            ExprKind::Name(n) => match n.slot.get() {
                Slot::Local(s) => self.tensors.get(&s).cloned().ok_or("not a tensor"),
                _ => Err("not a tensor"),
            },
            _ => Err("not a tensor"),
        }
    }

    /// The address of `x[i]` or `x[i, j]` (Python's negative indices),
    /// bailing when an index is out of range.
    fn element(&mut self, t: &TensorArg, items: &[IndexItem]) -> R<Value> {
        if items.len() != t.dims.len() {
            return Err("index count");
        }
        let mut offset = self.b.ins().iconst(I64, 0);
        for (k, item) in items.iter().enumerate() {
            let IndexItem::At(e) = item else {
                return Err("slice");
            };
            let (i, ty) = self.value(e)?;
            if ty != Ty::Int {
                return Err("index type");
            }
            let n = t.dims[k];
            let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, i, 0);
            let wrapped = self.b.ins().iadd(i, n);
            let i = self.b.ins().select(neg, wrapped, i);
            // Unsigned: a still-negative index is huge, so out of range too.
            let out = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, i, n);
            self.bail_if(out);
            let step = self.b.ins().imul(i, t.strides[k]);
            offset = self.b.ins().iadd(offset, step);
        }
        let bytes = self.b.ins().ishl_imm_u(offset, 3);
        Ok(self.b.ins().iadd(t.ptr, bytes))
    }

    fn block(&mut self, b: &Block) -> R<Out> {
        let mut last = Out::Unit;
        for s in &b.stmts {
            // After a `return` or `break` the rest is unreachable, but it must
            // still qualify (the interpreter would not look at it either way).
            let out = self.expr(s)?;
            if !matches!(last, Out::Never) {
                last = out;
            }
        }
        Ok(last)
    }

    fn if_(&mut self, cond: &Expr, then: &Block, otherwise: Option<&Expr>) -> R<Out> {
        let (c, ty) = self.value(cond)?;
        if ty != Ty::Bool {
            return Err("condition");
        }
        let then_b = self.b.create_block();
        let else_b = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(c, then_b, &[], else_b, &[]);
        // Each branch ends by jumping to `join` (even one that never gets
        // there: its block is unreachable), leaving its value in `result`.
        let mut result: Option<(Variable, Ty)> = None;
        let mut branch = |fx: &mut Self, out: Out| {
            if let Out::Val(v, ty) = out {
                let var = match result {
                    Some((var, t)) if t == ty => Some(var),
                    Some(_) => None,
                    None => {
                        let var = fx.b.declare_var(cl(ty));
                        result = Some((var, ty));
                        Some(var)
                    }
                };
                if let Some(var) = var {
                    fx.b.def_var(var, v);
                }
            }
            fx.b.ins().jump(join, &[]);
        };
        self.b.switch_to_block(then_b);
        let env = self.env.clone();
        let t = self.block(then)?;
        branch(self, t);
        let then_env = std::mem::replace(&mut self.env, env);
        self.b.switch_to_block(else_b);
        let o = match otherwise {
            Some(e) => self.expr(e)?,
            None => Out::Unit,
        };
        branch(self, o);
        // Variables of one type keep it whichever branch ran.
        self.same_types(&then_env)?;
        self.b.switch_to_block(join);
        // A value when both branches give one of the same type, or one gives
        // it and the other never finishes.
        Ok(match (t, o, result) {
            (Out::Never, Out::Never, _) => Out::Never,
            (Out::Val(_, a), Out::Val(_, b), Some((var, _))) if a == b => {
                Out::Val(self.b.use_var(var), a)
            }
            (Out::Val(_, a), Out::Never, Some((var, _)))
            | (Out::Never, Out::Val(_, a), Some((var, _))) => Out::Val(self.b.use_var(var), a),
            _ => Out::Unit,
        })
    }

    fn assign(&mut self, place: &Place, op: Option<BinOp>, value: &Expr) -> R<Out> {
        let Slot::Local(s) = place.root.slot.get() else {
            return Err("non-local assignment");
        };
        match place.path.as_slice() {
            [] => {
                let (cur, cur_ty) = self.read(s)?;
                let (v, ty) = self.value(value)?;
                let (v, ty) = match op {
                    None => (v, ty),
                    Some(op) => self.binary(op, cur, cur_ty, v, ty, Some(value))?,
                };
                if ty != cur_ty {
                    return Err("variable changes type");
                }
                self.bind(s, ty, v);
            }
            [PlaceStep::Index(items, _)] => {
                let t = self.tensors.get(&s).ok_or("not a tensor")?.clone();
                self.writes[t.param] = true;
                let (v, ty) = self.value(value)?;
                let addr = self.element(&t, items)?;
                let v = match op {
                    None => self.float(v, ty)?,
                    Some(op) => {
                        let flags = MemFlagsData::new().with_notrap();
                        let cur = self.b.ins().load(F64, flags, addr, 0);
                        let (r, rty) = self.binary(op, cur, Ty::Float, v, ty, Some(value))?;
                        if rty != Ty::Float {
                            return Err("stored value type");
                        }
                        r
                    }
                };
                self.b
                    .ins()
                    .store(MemFlagsData::new().with_notrap(), v, addr, 0);
            }
            _ => return Err("assignment path"),
        }
        Ok(Out::Unit)
    }

    fn for_(&mut self, name: &Name, iter: &Expr, body: &Block) -> R<Out> {
        let Slot::Local(s) = name.slot.get() else {
            return Err("captured loop variable");
        };
        let ExprKind::Range {
            start,
            end,
            inclusive,
        } = &iter.kind
        else {
            return Err("loop over a non-range");
        };
        let (a, ta) = self.value(start)?;
        let (z, tz) = self.value(end)?;
        if (ta, tz) != (Ty::Int, Ty::Int) {
            return Err("range bounds");
        }
        let z = if *inclusive {
            // `t.saturating_add(1)`
            let max = self.b.ins().icmp_imm_s(IntCC::Equal, z, i64::MAX);
            let z1 = self.b.ins().iadd_imm_s(z, 1);
            self.b.ins().select(max, z, z1)
        } else {
            z
        };
        let head = self.b.create_block();
        let body_b = self.b.create_block();
        let latch = self.b.create_block();
        let exit = self.b.create_block();
        let i = self.b.append_block_param(head, I64);
        self.b.ins().jump(head, &[BlockArg::Value(a)]);
        self.b.switch_to_block(head);
        let more = self.b.ins().icmp(IntCC::SignedLessThan, i, z);
        self.b.ins().brif(more, body_b, &[], exit, &[]);
        self.b.switch_to_block(body_b);
        self.tick();
        self.bind(s, Ty::Int, i);
        self.loop_body(body, latch, exit)?;
        self.b.switch_to_block(latch);
        let next = self.b.ins().iadd_imm_s(i, 1);
        self.b.ins().jump(head, &[BlockArg::Value(next)]);
        self.b.switch_to_block(exit);
        Ok(Out::Unit)
    }

    fn while_(&mut self, cond: &Expr, body: &Block) -> R<Out> {
        let head = self.b.create_block();
        let body_b = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(head, &[]);
        self.b.switch_to_block(head);
        self.tick();
        let (c, ty) = self.value(cond)?;
        if ty != Ty::Bool {
            return Err("condition");
        }
        self.b.ins().brif(c, body_b, &[], exit, &[]);
        self.b.switch_to_block(body_b);
        self.loop_body(body, head, exit)?;
        self.b.switch_to_block(exit);
        Ok(Out::Unit)
    }

    /// A loop body with `continue` going to `next` and `break` to `exit`,
    /// ending with a jump to `next`; it leaves every variable's type as it was.
    fn loop_body(&mut self, body: &Block, next: Label, exit: Label) -> R<()> {
        self.loops.push((next, exit));
        let before = self.env.clone();
        let out = self.block(body);
        self.loops.pop();
        out?;
        self.same_types(&before)?;
        self.b.ins().jump(next, &[]);
        Ok(())
    }

    /// Variables bound both here and in `other` have the same type in both.
    fn same_types(&self, other: &HashMap<u32, Ty>) -> R<()> {
        for (slot, ty) in other {
            if self.env.get(slot).is_some_and(|t| t != ty) {
                return Err("variable changes type");
            }
        }
        Ok(())
    }
}

/// A numeric literal's value (a constant exponent).
fn literal(e: &Expr) -> Option<f64> {
    match e.kind {
        ExprKind::Int(i) => Some(i as f64),
        ExprKind::Float(f) => Some(f),
        _ => None,
    }
}

/// `a ^ b` for Ints with `b ≥ 0`, as `ops::int_op`: overflow sets `failed`.
extern "C" fn int_pow(a: i64, b: i64, failed: *mut u8) -> i64 {
    match u32::try_from(b).ok().and_then(|e| a.checked_pow(e)) {
        Some(v) => v,
        None => {
            // SAFETY: `failed` points at the caller's status byte.
            unsafe { *failed = 1 };
            0
        }
    }
}

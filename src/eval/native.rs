//! Calls of `fn`s as machine code (`jit::scalar`): the frame's arguments are
//! typed, the function is compiled once for those types (or found not to
//! qualify, also remembered), and run. When the compiled code bails, the
//! arguments are put back as they were and the interpreter runs the call.

use std::collections::HashMap;
use std::rc::Rc;

use super::interp::Interp;
use super::value::Value;
use crate::jit::scalar::{self, Compiled, Ret, Ty};
use crate::syntax::ast::{FnDef, Slot};

/// Per function (by address, kept alive by the `Rc`): its compiled variants.
#[derive(Default)]
pub struct Cache(HashMap<usize, (Rc<FnDef>, Vec<Variant>)>);

type Variant = (Vec<Ty>, Option<Rc<Compiled>>);

impl Cache {
    /// How many (function, argument types) pairs run as machine code.
    pub fn compiled(&self) -> usize {
        self.0
            .values()
            .map(|(_, v)| v.iter().filter(|(_, c)| c.is_some()).count())
            .sum()
    }
}

impl Interp {
    /// Run the current call's body as machine code, if it qualifies and does
    /// not bail. Its arguments are in the frame.
    pub(super) fn call_native(&mut self, def: &FnDef) -> Option<Value> {
        let closure = self.closure.clone()?;
        if !std::ptr::eq(Rc::as_ptr(&closure.def), def) {
            return None;
        }
        let mut slots = Vec::with_capacity(def.params.len());
        let mut tys = Vec::with_capacity(def.params.len());
        for p in &def.params {
            let Slot::Local(s) = p.name.slot.get() else {
                return None;
            };
            let at = self.base + s as usize;
            slots.push(at);
            tys.push(match &self.stack[at] {
                Value::Int(_) => Ty::Int,
                Value::Float(_) => Ty::Float,
                Value::Bool(_) => Ty::Bool,
                Value::Tensor(t) if matches!(t.ndim(), 1 | 2) => Ty::Tensor(t.ndim() as u8),
                _ => return None,
            });
        }
        let (_, variants) = self
            .native
            .0
            .entry(Rc::as_ptr(&closure.def) as usize)
            .or_insert_with(|| (closure.def.clone(), Vec::new()));
        let compiled = match variants.iter().find(|(t, _)| *t == tys) {
            Some((_, c)) => c.clone(),
            None => {
                let c = scalar::compile(def, &tys, &self.linker.builtins)
                    .ok()
                    .map(Rc::new);
                variants.push((tys, c.clone()));
                c
            }
        }?;

        // Tensors the body writes: keep the caller's, write a copy.
        let mut originals = Vec::new();
        let mut args: Vec<u64> = Vec::with_capacity(slots.len() * 2);
        for (i, &at) in slots.iter().enumerate() {
            match &mut self.stack[at] {
                Value::Int(v) => args.push(*v as u64),
                Value::Float(f) => args.push(f.to_bits()),
                Value::Bool(b) => args.push(*b as u64),
                Value::Tensor(t) => {
                    let ptr = if compiled.writes[i] {
                        originals.push((at, t.clone()));
                        Rc::make_mut(t).as_mut_ptr()
                    } else {
                        t.as_ptr() as *mut f64
                    };
                    args.push(ptr as u64);
                    args.extend(t.shape().iter().map(|&d| d as u64));
                    args.extend(t.strides().iter().map(|&s| s as i64 as u64));
                }
                _ => unreachable!("typed above"),
            }
        }
        let budget = self
            .step_limit
            .saturating_sub(self.steps)
            .min(i64::MAX as u64) as i64;
        let mut fuel = budget;
        // SAFETY: `args` is packed as `compile` expects for `tys`; the tensors
        // written are unshared copies, alive in the frame for the call.
        let out = unsafe {
            compiled.call(
                &args,
                &mut fuel,
                self.interrupt_flag().as_ptr() as *const u8,
            )
        };
        self.steps += (budget - fuel.max(0)) as u64;
        let Some(out) = out else {
            for (at, t) in originals {
                self.stack[at] = Value::Tensor(t);
            }
            return None;
        };
        Some(match compiled.ret {
            Ret::None => Value::None,
            Ret::Int => Value::Int(out as i64),
            Ret::Float => Value::Float(f64::from_bits(out)),
            Ret::Bool => Value::Bool(out != 0),
            Ret::Param(k) => self.stack[slots[k]].clone(),
        })
    }
}

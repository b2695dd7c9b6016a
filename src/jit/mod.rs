//! Native code for the hot paths, compiled by Cranelift:
//!
//! - `kernel`: a kernel body's tape (and its gradient's) as one fused pass
//!   over a row of the geometry matrices;
//! - `scalar`: a `fn` over numbers, loops and tensor elements;
//! - `fused`: a chain of elementwise operations over tensors as one loop.
//!
//! Every path computes exactly what the interpreter computes: the same IEEE
//! operations in the same order, and for everything that is not one machine
//! instruction a call to the very Rust function the interpreter uses
//! (`math`), so results are bitwise identical with and without `--no-jit`.
//! `lanes` emits those operations for one value or for groups of `f64x2`.

pub mod fused;
pub mod kernel;
mod lanes;
pub mod math;
pub mod scalar;

use std::cell::Cell;

use cranelift_codegen::ir::{types, AbiParam, Type, UserFuncName};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

thread_local! {
    static ENABLED: Cell<bool> = Cell::new(!env_disables());
}

/// `FLX_NO_JIT` set to anything but `0` or nothing turns the JIT off, as `--no-jit` does.
fn env_disables() -> bool {
    std::env::var_os("FLX_NO_JIT").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether the JIT is used on this thread (the session's).
pub fn enabled() -> bool {
    ENABLED.with(Cell::get)
}

/// Turn the JIT on or off for this thread; `FLX_NO_JIT` keeps it off.
pub fn set_enabled(on: bool) {
    ENABLED.with(|e| e.set(on && !env_disables()));
}

/// The pointer-sized integer type.
pub const PTR: Type = types::I64;

/// One compiled function; its machine code is freed with it.
pub struct Code {
    module: Option<JITModule>,
    pub ptr: *const u8,
}

// SAFETY: the module is only touched again to free it; the code is immutable.
unsafe impl Send for Code {}
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: nothing refers to the code once its `Code` is gone.
            unsafe { m.free_memory() }
        }
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Code({:p})", self.ptr)
    }
}

/// Compile one function with the given parameter and result types; `body`
/// fills it in (its entry block is made, with the parameters, and selected),
/// calling Rust functions with the given convention, or gives up with a reason.
pub fn compile(
    params: &[Type],
    returns: &[Type],
    body: impl FnOnce(&mut FunctionBuilder, CallConv) -> Result<(), String>,
) -> Result<Code, String> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| f.set(k, v).map_err(|e| e.to_string());
    set(&mut flags, "opt_level", "speed")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    let isa = cranelift_native::builder()
        .map_err(|e| e.to_string())?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())?;
    let call_conv = isa.default_call_conv();
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let mut sig = module.make_signature();
    sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
    sig.returns
        .extend(returns.iter().map(|&t| AbiParam::new(t)));
    let id = module
        .declare_function("flx", Linkage::Export, &sig)
        .map_err(|e| e.to_string())?;
    let mut ctx = Context::new();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        body(&mut b, call_conv)?;
        b.seal_all_blocks();
        b.finalize(module.isa().frontend_config());
    }
    module
        .define_function(id, &mut ctx)
        .map_err(|e| format!("{e:?}"))?;
    module.finalize_definitions().map_err(|e| e.to_string())?;
    let ptr = module.get_finalized_function(id);
    Ok(Code {
        module: Some(module),
        ptr,
    })
}

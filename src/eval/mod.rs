//! Evaluation: values, the interpreter, operators, indexing, formatting and builtins.

pub mod batched;
pub mod builtins;
pub mod dtype;
pub mod format;
pub mod fused;
pub mod index;
pub mod interp;
pub mod kernel_values;
pub mod model;
pub mod native;
pub mod ops;
pub mod traced;
pub mod train;
pub mod transform;
pub mod value;

//! Evaluation: values, the interpreter, operators, formatting and builtins.

pub mod builtins;
pub mod format;
pub mod fused;
pub mod interp;
pub mod kernel_values;
pub mod model;
pub mod native;
pub mod ops;
pub mod traced;
pub mod train;
pub mod value;

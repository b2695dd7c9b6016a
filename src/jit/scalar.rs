//! Scalar functions (to come).

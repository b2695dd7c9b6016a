//! Fused elementwise chains (to come).

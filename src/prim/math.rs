//! The Rust functions that compute each primitive's value. Every engine
//! calls these or emits exactly their operations (the JIT's `exp` is this
//! file's polynomial, instruction for instruction), which is what makes
//! results identical whichever engine ran.

/// `-x`.
pub fn neg(x: f64) -> f64 {
    -x
}

/// The constants of `exp`, shared with the JIT (`jit::lanes::exp`), which
/// emits the same operations.
pub mod exp_consts {
    pub const LOG2E: f64 = std::f64::consts::LOG2_E;
    // ln 2 split so that k * LN2_HI is exact for |k| < 2^21 (fdlibm's constants).
    pub const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    pub const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Adding 1.5 * 2^52 rounds to an integer, which then sits in the low mantissa bits.
    pub const SHIFTER: f64 = 6_755_399_441_055_744.0;
    pub const C: [f64; 13] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362880.0,
        1.0 / 3628800.0,
        1.0 / 39916800.0,
        1.0 / 479001600.0,
    ];
    /// The polynomial covers [LO, HI]; outside it `f64::exp` does.
    pub const LO: f64 = -708.0;
    pub const HI: f64 = 709.0;
}

/// e^x on [-708, 709], branch-free: Cody–Waite reduction x = k ln 2 + r with
/// |r| ≤ ln2 / 2, a degree-12 Taylor polynomial for e^r (truncation error
/// below 2e-16 relative), and 2^k put into the exponent bits. Within 2 ulp
/// of the correctly rounded result.
#[inline(always)]
fn exp_polynomial(v: f64) -> f64 {
    use exp_consts::*;
    let t = v * LOG2E + SHIFTER;
    let k = t - SHIFTER;
    let r = (v - k * LN2_HI) - k * LN2_LO;
    let mut p = C[12];
    for c in C[..12].iter().rev() {
        p = p * r + c;
    }
    let kbits = t.to_bits().wrapping_sub(SHIFTER.to_bits());
    let scale = f64::from_bits(kbits.wrapping_add(1023) << 52);
    p * scale
}

/// e^x: the polynomial where it applies, `f64::exp` elsewhere (overflow,
/// subnormal results, nan).
#[inline]
pub fn exp(x: f64) -> f64 {
    if (exp_consts::LO..=exp_consts::HI).contains(&x) {
        exp_polynomial(x)
    } else {
        x.exp()
    }
}

/// `exp` over a slice, element for element the same as `exp`, written so
/// that the main loop has no branch and vectorises.
#[inline(always)]
pub fn exp_slice(x: &[f64], out: &mut [f64]) {
    use exp_consts::{HI, LO};
    for (o, &v) in out.iter_mut().zip(x) {
        *o = exp_polynomial(v.clamp(LO, HI));
    }
    for (o, &v) in out.iter_mut().zip(x) {
        if !(LO..=HI).contains(&v) {
            *o = v.exp();
        }
    }
}

pub fn log(x: f64) -> f64 {
    x.ln()
}
pub fn sqrt(x: f64) -> f64 {
    x.sqrt()
}
pub fn abs(x: f64) -> f64 {
    x.abs()
}
pub fn sin(x: f64) -> f64 {
    x.sin()
}
pub fn cos(x: f64) -> f64 {
    x.cos()
}
pub fn tanh(x: f64) -> f64 {
    x.tanh()
}

/// 1 / (1 + e^-x), in the form that neither overflows nor cancels.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + exp(-x))
    } else {
        let e = exp(x);
        e / (1.0 + e)
    }
}

/// max(x, 0), and 0 for nan (as `x > 0` is false).
pub fn relu(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// -1, 0 or 1; zeros keep their sign and nan stays nan (NumPy's `sign`).
pub fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x
    }
}

/// 1 where x > 0, else 0: the derivative of `relu`.
pub fn step(x: f64) -> f64 {
    (x > 0.0) as u8 as f64
}

pub fn floor(x: f64) -> f64 {
    x.floor()
}
pub fn ceil(x: f64) -> f64 {
    x.ceil()
}
/// Halves to even, as NumPy rounds.
pub fn round(x: f64) -> f64 {
    x.round_ties_even()
}

pub fn add(a: f64, b: f64) -> f64 {
    a + b
}
pub fn sub(a: f64, b: f64) -> f64 {
    a - b
}
pub fn mul(a: f64, b: f64) -> f64 {
    a * b
}
pub fn div(a: f64, b: f64) -> f64 {
    a / b
}

/// Python's `%`: the result takes the divisor's sign.
pub fn rem(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r != 0.0 && (r < 0.0) != (b < 0.0) {
        r + b
    } else {
        r
    }
}

/// Python's float `//`: the quotient whose remainder is `rem(a, b)`,
/// rounded to the nearest whole number (exact where `floor(a / b)` is not,
/// e.g. `1 // 0.1 == 9`); ±inf or nan where `b` is 0, as NumPy.
pub fn floor_div(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        return (a / b).floor();
    }
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && (b < 0.0) != (m < 0.0) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0.0f64.copysign(a / b);
    }
    let f = div.floor();
    if div - f > 0.5 {
        f + 1.0
    } else {
        f
    }
}

/// `x ^ p`, with the common small powers by multiplication (exact for
/// squares, and fast) and `powf` otherwise. `jit::lanes::pow_const` emits
/// the same cases for a constant exponent.
#[inline]
pub fn pow(x: f64, p: f64) -> f64 {
    if p == 2.0 {
        x * x
    } else if p == 1.0 {
        x
    } else if p == 3.0 {
        x * x * x
    } else if p == 0.5 {
        x.sqrt()
    } else {
        x.powf(p)
    }
}

/// The larger of two numbers; nan if either is (NumPy's `maximum`).
pub fn max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The smaller of two numbers; nan if either is (NumPy's `minimum`).
pub fn min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

pub fn eq(a: f64, b: f64) -> f64 {
    (a == b) as u8 as f64
}
pub fn ne(a: f64, b: f64) -> f64 {
    (a != b) as u8 as f64
}
pub fn lt(a: f64, b: f64) -> f64 {
    (a < b) as u8 as f64
}
pub fn le(a: f64, b: f64) -> f64 {
    (a <= b) as u8 as f64
}
pub fn gt(a: f64, b: f64) -> f64 {
    (a > b) as u8 as f64
}
pub fn ge(a: f64, b: f64) -> f64 {
    (a >= b) as u8 as f64
}

/// Below this, `safe_div` treats its divisor as zero (the reference RFM
/// code's threshold for the gradient of a kernel at `dist = 0`).
pub const ZERO_DIST: f64 = 1e-10;

/// a / b, and 0 where |b| < `ZERO_DIST`.
pub fn safe_div(a: f64, b: f64) -> f64 {
    if b.abs() < ZERO_DIST {
        0.0
    } else {
        a / b
    }
}

/// Sum in pairwise blocks, as NumPy does, so large sums keep their accuracy
/// and do not depend on the thread count.
pub fn pairwise_sum(s: &[f64]) -> f64 {
    if s.len() <= 128 {
        // Eight accumulators, like NumPy's unrolled base case.
        let mut acc = [0.0f64; 8];
        let chunks = s.chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            for k in 0..8 {
                acc[k] += c[k];
            }
        }
        let mut total =
            ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for &x in rest {
            total += x;
        }
        total
    } else {
        let mid = (s.len() / 2) / 8 * 8;
        pairwise_sum(&s[..mid]) + pairwise_sum(&s[mid..])
    }
}

pub fn mean(v: &[f64]) -> f64 {
    pairwise_sum(v) / v.len() as f64
}

/// Divides by n, as NumPy's `var`.
pub fn variance(v: &[f64]) -> f64 {
    let m = mean(v);
    mean(&v.iter().map(|x| (x - m) * (x - m)).collect::<Vec<_>>())
}

pub fn norm(v: &[f64]) -> f64 {
    pairwise_sum(&v.iter().map(|x| x * x).collect::<Vec<_>>()).sqrt()
}

pub fn logsumexp(v: &[f64]) -> f64 {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, max);
    if !m.is_finite() {
        return m;
    }
    m + pairwise_sum(&v.iter().map(|x| exp(x - m)).collect::<Vec<_>>()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_and_the_slice_form_is_the_scalar_form() {
        let xs: Vec<f64> = (0..200_001)
            .map(|i| -745.0 + 1460.0 * i as f64 / 200_000.0)
            .chain([
                0.0,
                -0.0,
                1e-300,
                -1e-300,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                709.7,
                -744.9,
                -708.0,
                709.0,
            ])
            .collect();
        let mut out = vec![0.0; xs.len()];
        exp_slice(&xs, &mut out);
        for (&x, &y) in xs.iter().zip(&out) {
            assert_eq!(y.to_bits(), exp(x).to_bits(), "exp_slice({x}) != exp({x})");
            let want = x.exp();
            if want.is_nan() {
                assert!(y.is_nan());
                continue;
            }
            let ulp = (want.to_bits() as i64 - y.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {y}, libm {want}, {ulp} ulp");
        }
    }

    #[test]
    fn pairwise_sum_is_accurate() {
        let v = vec![0.1; 1_000_001];
        let s = pairwise_sum(&v);
        assert!((s - 100_000.1).abs() < 1e-6, "{s}");
    }

    #[test]
    fn python_remainder_and_nan_propagating_extremes() {
        assert_eq!(rem(-7.0, 3.0), 2.0);
        assert_eq!(rem(7.0, -3.0), -2.0);
        assert!(max(f64::NAN, 1.0).is_nan() && min(1.0, f64::NAN).is_nan());
        assert_eq!(relu(f64::NAN), 0.0);
        assert!(sign(f64::NAN).is_nan() && sign(-0.0).is_sign_negative());
    }
}

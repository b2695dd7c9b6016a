//! A kernel expression compiled to a straight-line tape and run over the
//! geometry matrices in chunks: each instruction is one tight loop over a
//! chunk of columns, so the per-node dispatch is paid once per chunk, not per
//! element. Rows are spread over the thread pool; results do not depend on
//! the number of threads (every element is computed the same way).

use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
use std::sync::OnceLock;

use crate::jit;
use crate::jit::kernel::{Instr, RowProgram, Src};
use crate::prim::{Binary, Unary};

use super::expr::{Geo, Graph, Id, Node};

#[cfg(target_arch = "x86_64")]
static HAS_AVX2: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::arch::is_x86_feature_detected!("avx2"));

/// Columns per chunk: a few registers of this size stay in the L1 cache.
const CHUNK: usize = 256;

/// A kernel expression as a program over registers (`jit::kernel::RowProgram`),
/// run here a chunk of columns at a time, or as machine code.
#[derive(Debug)]
pub struct Tape {
    program: RowProgram,
    n_regs: usize,
    /// The same computation in machine code (`jit::kernel`), made on first use.
    native: OnceLock<Option<jit::Code>>,
}

/// Per-row geometry inputs besides `x M zᵀ` (in the first output on entry):
/// the rows' and the columns' squared norms, and what the l1 distances are
/// computed from, where the tape reads them.
pub struct Rows<'a> {
    pub xn2: &'a [f64],
    pub zn2: &'a [f64],
    pub l1: Option<L1<'a>>,
}

/// The inputs of `l1dist = Σₖ mₖ |xₖ − zₖ|`: the rows of X, Zᵀ (d × m, rows
/// contiguous) and M's diagonal (none for the identity). Each row's distances
/// are computed by the thread that runs the row, so no n × m matrix is kept.
pub struct L1<'a> {
    pub x: ArrayView2<'a, f64>,
    pub zt: ArrayView2<'a, f64>,
    pub m: Option<&'a [f64]>,
}

impl L1<'_> {
    /// Columns `from..` of row i into `out` (one feature at a time, so the
    /// loop runs along the columns; every entry sums its features in order,
    /// so the matrix of X against itself is exactly symmetric, 0 on the diagonal).
    fn row(&self, i: usize, from: usize, out: &mut [f64]) {
        let out = &mut out[from..];
        out.fill(0.0);
        for (k, &xk) in self.x.row(i).iter().enumerate() {
            let zk = &self.zt.row(k).to_slice().expect("contiguous rows")[from..];
            match self.m {
                Some(m) => {
                    let mk = m[k];
                    for (o, &z) in out.iter_mut().zip(zk) {
                        *o += mk * (xk - z).abs();
                    }
                }
                None => {
                    for (o, &z) in out.iter_mut().zip(zk) {
                        *o += (xk - z).abs();
                    }
                }
            }
        }
    }
}

impl Tape {
    pub fn compile(g: &Graph, roots: &[Id]) -> Tape {
        let top = roots.iter().copied().max().map_or(0, |r| r as usize + 1);
        let mut live = vec![false; top];
        for &r in roots {
            live[r as usize] = true;
        }
        for i in (0..top).rev() {
            if live[i] {
                match g.nodes[i] {
                    Node::Unary(_, a) => live[a as usize] = true,
                    Node::Binary(_, a, b) => {
                        live[a as usize] = true;
                        live[b as usize] = true;
                    }
                    _ => {}
                }
            }
        }
        let mut src: Vec<Option<Src>> = vec![None; top];
        let mut tape = Tape {
            program: RowProgram {
                instrs: Vec::new(),
                geo: [None; 6],
                outputs: Vec::new(),
            },
            n_regs: 0,
            native: OnceLock::new(),
        };
        let reg = |t: &mut Tape| {
            t.n_regs += 1;
            (t.n_regs - 1) as u16
        };
        for i in 0..top {
            if !live[i] {
                continue;
            }
            let s = |x: Id, src: &[Option<Src>]| src[x as usize].expect("operands come first");
            src[i] = Some(match g.nodes[i] {
                Node::Const(bits) => Src::Const(f64::from_bits(bits)),
                // Instances have no hyperparameter nodes left (they are substituted).
                Node::Hyper(_) => Src::Const(f64::NAN),
                Node::Geo(q) => {
                    let r = reg(&mut tape);
                    tape.program.geo[q as usize] = Some(r);
                    Src::Reg(r)
                }
                Node::Unary(f, a) => {
                    let Src::Reg(a) = s(a, &src) else {
                        unreachable!("constants are folded")
                    };
                    let r = reg(&mut tape);
                    tape.program.instrs.push(Instr::Unary(f, a, r));
                    Src::Reg(r)
                }
                Node::Binary(op, a, b) => {
                    let r = reg(&mut tape);
                    tape.program
                        .instrs
                        .push(Instr::Binary(op, s(a, &src), s(b, &src), r));
                    Src::Reg(r)
                }
            });
        }
        tape.program.outputs = roots
            .iter()
            .map(|r| src[*r as usize].expect("root"))
            .collect();
        tape
    }

    pub fn reads(&self, q: Geo) -> bool {
        self.program.geo[q as usize].is_some()
    }

    /// Overwrite `outs[0]` (n × m, holding `x M zᵀ` on entry) with the tape's
    /// first output at each pair, and `outs[k]` with output k. With `upper`,
    /// only the entries on and above the diagonal. Rows must be contiguous.
    pub fn run(&self, rows: &Rows, upper: bool, outs: &mut [ArrayViewMut2<f64>]) {
        let m = rows.zn2.len();
        assert_eq!(outs.len(), self.program.outputs.len());
        if m == 0 {
            return;
        }
        let mut per_row: Vec<Vec<&mut [f64]>> = (0..rows.xn2.len()).map(|_| Vec::new()).collect();
        for out in outs.iter_mut() {
            for (i, row) in out.rows_mut().into_iter().enumerate() {
                per_row[i].push(row.into_slice().expect("contiguous rows"));
            }
        }
        let native = if jit::enabled() {
            self.native
                .get_or_init(|| {
                    jit::kernel::compile(&self.program)
                        .map_err(|e| debug_assert!(false, "kernel JIT: {e}"))
                        .ok()
                })
                .as_ref()
        } else {
            None
        };
        let regs_len = if native.is_some() {
            0
        } else {
            self.n_regs * CHUNK
        };
        let l1 = rows.l1.as_ref().filter(|_| self.reads(Geo::L1dist));
        let l1_len = if l1.is_some() { m } else { 0 };
        per_row.par_iter_mut().enumerate().for_each_init(
            || (vec![0.0; regs_len], vec![0.0; l1_len]),
            |(regs, l1_row), (i, out)| {
                let from = if upper { i.min(m) } else { 0 };
                let (xn2, zn2) = (rows.xn2[i], rows.zn2);
                if let Some(l1) = l1 {
                    l1.row(i, from, l1_row);
                }
                let l1 = &l1_row[..];
                if let Some(code) = native {
                    jit::kernel::run_row(code, xn2, zn2, l1, from, out);
                    return;
                }
                let row = Row {
                    xn2,
                    zn2,
                    l1,
                    from,
                    out,
                };
                #[cfg(target_arch = "x86_64")]
                if *HAS_AVX2 {
                    // SAFETY: the CPU supports AVX2 (checked at run time).
                    unsafe { self.run_row_avx2(row, regs) };
                    return;
                }
                self.run_row(row, regs)
            },
        );
    }

    /// `run_row` compiled for AVX2: the same operations in the same order (Rust
    /// never fuses a multiply and an add), so the same results, 4 lanes wide.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_row_avx2(&self, row: Row, regs: &mut [f64]) {
        self.run_row(row, regs)
    }

    #[inline(always)]
    fn run_row(&self, row: Row, regs: &mut [f64]) {
        let Row {
            xn2,
            zn2,
            l1,
            from,
            out,
        } = row;
        let m = zn2.len();
        let mut j0 = from;
        while j0 < m {
            let len = CHUNK.min(m - j0);
            let cols = j0..j0 + len;
            let l1 = l1.get(cols.clone()).unwrap_or(&[]);
            self.load_geometry(
                xn2,
                &zn2[cols.clone()],
                &out[0][cols.clone()],
                l1,
                regs,
                len,
            );
            self.exec(regs, len);
            for (o, dst) in self.program.outputs.iter().zip(out.iter_mut()) {
                let dst = &mut dst[cols.clone()];
                match *o {
                    Src::Const(c) => dst.fill(c),
                    Src::Reg(r) => dst.copy_from_slice(&reg(regs, r)[..len]),
                }
            }
            j0 += len;
        }
    }

    #[inline(always)]
    fn load_geometry(
        &self,
        xn2: f64,
        zn2: &[f64],
        dot: &[f64],
        l1: &[f64],
        regs: &mut [f64],
        len: usize,
    ) {
        let [dist, sqdist, dotr, xnorm, znorm, l1dist] = self.program.geo;
        if let Some(r) = l1dist {
            reg_mut(regs, r)[..len].copy_from_slice(l1);
        }
        if let Some(r) = dotr {
            reg_mut(regs, r)[..len].copy_from_slice(dot);
        }
        let sq = |d: f64, z: f64| ((-2.0 * d + xn2) + z).max(0.0);
        match (sqdist, dist) {
            (Some(s), Some(d)) => {
                let (s, d) = pair_mut(regs, s, d);
                for (((s, d), &x), &z) in s[..len].iter_mut().zip(&mut d[..len]).zip(dot).zip(zn2) {
                    // The reference's order of operations: (-2 x·z + |x|²) + |z|², clamped at 0.
                    *s = sq(x, z);
                    *d = s.sqrt();
                }
            }
            (Some(r), None) | (None, Some(r)) => {
                let root = dist.is_some();
                for ((o, &x), &z) in reg_mut(regs, r)[..len].iter_mut().zip(dot).zip(zn2) {
                    let s = sq(x, z);
                    *o = if root { s.sqrt() } else { s };
                }
            }
            (None, None) => {}
        }
        if let Some(r) = xnorm {
            reg_mut(regs, r)[..len].fill(xn2.sqrt());
        }
        if let Some(r) = znorm {
            for (o, z) in reg_mut(regs, r)[..len].iter_mut().zip(zn2) {
                *o = z.sqrt();
            }
        }
    }

    #[inline(always)]
    fn exec(&self, regs: &mut [f64], len: usize) {
        for ins in &self.program.instrs {
            match *ins {
                Instr::Unary(f, a, r) => {
                    let (src, dst) = two_regs(regs, a, r);
                    unary(f, &src[..len], &mut dst[..len]);
                }
                Instr::Binary(op, a, b, r) => binary_chunk(op, a, b, r, regs, len),
            }
        }
    }
}

/// Columns `from..` of one row of the outputs (`out[0]` holds `x M zᵀ` on entry).
struct Row<'a, 'b> {
    xn2: f64,
    zn2: &'a [f64],
    l1: &'a [f64],
    from: usize,
    out: &'a mut [&'b mut [f64]],
}

#[inline(always)]
fn reg(regs: &[f64], r: u16) -> &[f64] {
    &regs[r as usize * CHUNK..(r as usize + 1) * CHUNK]
}

#[inline(always)]
fn reg_mut(regs: &mut [f64], r: u16) -> &mut [f64] {
    &mut regs[r as usize * CHUNK..(r as usize + 1) * CHUNK]
}

/// A source register to read and a different destination register to write
/// (a node's register always comes after its operands').
#[inline(always)]
fn two_regs(regs: &mut [f64], src: u16, dst: u16) -> (&[f64], &mut [f64]) {
    debug_assert!(src < dst);
    let (lo, hi) = regs.split_at_mut(dst as usize * CHUNK);
    (reg(lo, src), &mut hi[..CHUNK])
}

/// Two different registers, both writable.
#[inline(always)]
fn pair_mut(regs: &mut [f64], a: u16, b: u16) -> (&mut [f64], &mut [f64]) {
    if a < b {
        let (lo, hi) = regs.split_at_mut(b as usize * CHUNK);
        (reg_mut(lo, a), &mut hi[..CHUNK])
    } else {
        let (lo, hi) = regs.split_at_mut(a as usize * CHUNK);
        (&mut hi[..CHUNK], reg_mut(lo, b))
    }
}

#[inline(always)]
fn unary(f: Unary, x: &[f64], out: &mut [f64]) {
    f.apply_slice(x, out)
}

/// One binary primitive over a chunk, each primitive's loop monomorphised.
#[inline(always)]
fn binary_chunk(op: Binary, a: Src, b: Src, r: u16, regs: &mut [f64], len: usize) {
    let (lo, hi) = regs.split_at_mut(r as usize * CHUNK);
    let out = &mut hi[..len];
    macro_rules! each {
        ($f:expr) => {
            match (a, b) {
                (Src::Reg(a), Src::Reg(b)) => {
                    for ((o, &x), &y) in out
                        .iter_mut()
                        .zip(&reg(lo, a)[..len])
                        .zip(&reg(lo, b)[..len])
                    {
                        *o = $f(x, y)
                    }
                }
                (Src::Reg(a), Src::Const(y)) => {
                    for (o, &x) in out.iter_mut().zip(&reg(lo, a)[..len]) {
                        *o = $f(x, y)
                    }
                }
                (Src::Const(x), Src::Reg(b)) => {
                    for (o, &y) in out.iter_mut().zip(&reg(lo, b)[..len]) {
                        *o = $f(x, y)
                    }
                }
                (Src::Const(x), Src::Const(y)) => out.fill($f(x, y)),
            }
        };
    }
    macro_rules! table {
        ($($op:ident),*) => {
            match op {
                $(Binary::$op => each!(|x, y| Binary::$op.apply(x, y)),)*
            }
        };
    }
    table!(Add, Sub, Mul, Div, Rem, FloorDiv, Pow, Max, Min, Eq, Ne, Lt, Le, Gt, Ge, SafeDiv)
}

//! Scalar expressions over the pair geometry, with symbolic derivatives.
//!
//! A `Graph` is a hash-consed arena: building the same node twice returns the
//! same id, so common subexpressions (the `exp(-dist / L)` that reappears in
//! its own derivative) are shared and computed once. The constructors
//! simplify as they build (constant folding, `x * 1`, `x + 0`, `--x`), which
//! keeps derivatives small without a separate simplifier.

use std::collections::HashMap;

/// The pair quantities a kernel body is written over, in `KERNEL_GEOMETRY` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Geo {
    Dist,
    Sqdist,
    Dot,
    Xnorm,
    Znorm,
}

impl Geo {
    pub const ALL: [Geo; 5] = [Geo::Dist, Geo::Sqdist, Geo::Dot, Geo::Xnorm, Geo::Znorm];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fun {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Tanh,
    Sin,
    Cos,
    Sigmoid,
    /// Only produced by differentiation (of `abs`).
    Sign,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    /// 1 where a < b, else 0 (from differentiating `min` and `max`).
    Less,
    /// a / b, and 0 where |b| < 1e-10: the reference's convention for the
    /// gradient of a kernel at `dist = 0` (see `Kernel::gradient_terms`).
    SafeDiv,
}

pub type Id = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// The bits of an f64, so that nodes hash.
    Const(u64),
    Geo(Geo),
    /// A hyperparameter, by position in the kernel's head.
    Hyper(u16),
    Unary(Fun, Id),
    Binary(Op, Id, Id),
}

/// Below this, `SafeDiv` treats its divisor as zero (the reference's threshold).
pub const ZERO_DIST: f64 = 1e-10;

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    memo: HashMap<Node, Id>,
}

pub fn apply_fun(f: Fun, x: f64) -> f64 {
    match f {
        Fun::Neg => -x,
        Fun::Exp => x.exp(),
        Fun::Log => x.ln(),
        Fun::Sqrt => x.sqrt(),
        Fun::Abs => x.abs(),
        Fun::Tanh => x.tanh(),
        Fun::Sin => x.sin(),
        Fun::Cos => x.cos(),
        Fun::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Fun::Sign => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
    }
}

pub fn apply_op(op: Op, a: f64, b: f64) -> f64 {
    match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::Pow => pow(a, b),
        Op::Min => a.min(b),
        Op::Max => a.max(b),
        Op::Less => (a < b) as u8 as f64,
        Op::SafeDiv => {
            if b.abs() < ZERO_DIST {
                0.0
            } else {
                a / b
            }
        }
    }
}

/// `a ^ b`, exact for small integer exponents (as NumPy's `x ** 2` is).
#[inline]
pub fn pow(a: f64, b: f64) -> f64 {
    if b == 2.0 {
        a * a
    } else if b == 1.0 {
        a
    } else if b.fract() == 0.0 && b.abs() <= 64.0 {
        a.powi(b as i32)
    } else {
        a.powf(b)
    }
}

impl Graph {
    pub fn node(&self, id: Id) -> Node {
        self.nodes[id as usize]
    }

    fn intern(&mut self, n: Node) -> Id {
        if let Some(&id) = self.memo.get(&n) {
            return id;
        }
        let id = self.nodes.len() as Id;
        self.nodes.push(n);
        self.memo.insert(n, id);
        id
    }

    pub fn constant(&mut self, x: f64) -> Id {
        // One zero: -0.0 and 0.0 behave alike in every simplification below.
        let x = if x == 0.0 { 0.0 } else { x };
        self.intern(Node::Const(x.to_bits()))
    }

    pub fn geo(&mut self, g: Geo) -> Id {
        self.intern(Node::Geo(g))
    }

    pub fn hyper(&mut self, i: u16) -> Id {
        self.intern(Node::Hyper(i))
    }

    pub fn as_const(&self, id: Id) -> Option<f64> {
        match self.node(id) {
            Node::Const(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    fn is(&self, id: Id, x: f64) -> bool {
        self.as_const(id) == Some(x)
    }

    pub fn unary(&mut self, f: Fun, a: Id) -> Id {
        if let Some(x) = self.as_const(a) {
            return self.constant(apply_fun(f, x));
        }
        if f == Fun::Neg {
            if let Node::Unary(Fun::Neg, inner) = self.node(a) {
                return inner;
            }
        }
        self.intern(Node::Unary(f, a))
    }

    pub fn binary(&mut self, op: Op, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.as_const(a), self.as_const(b)) {
            return self.constant(apply_op(op, x, y));
        }
        match op {
            Op::Add if self.is(a, 0.0) => return b,
            Op::Add | Op::Sub if self.is(b, 0.0) => return a,
            Op::Sub if self.is(a, 0.0) => return self.unary(Fun::Neg, b),
            Op::Sub if a == b => return self.constant(0.0),
            Op::Mul | Op::SafeDiv if self.is(a, 0.0) => return self.constant(0.0),
            Op::Mul if self.is(b, 0.0) => return self.constant(0.0),
            Op::Mul if self.is(a, 1.0) => return b,
            Op::Mul | Op::Div if self.is(b, 1.0) => return a,
            Op::Mul if self.is(a, -1.0) => return self.unary(Fun::Neg, b),
            Op::Mul | Op::Div if self.is(b, -1.0) => return self.unary(Fun::Neg, a),
            Op::Div if self.is(a, 0.0) => return self.constant(0.0),
            Op::Pow if self.is(b, 1.0) => return a,
            Op::Pow if self.is(b, 0.0) => return self.constant(1.0),
            _ => {}
        }
        // Commutative operators in one canonical order, so `a*b` and `b*a` are shared.
        let (a, b) = match op {
            Op::Add | Op::Mul | Op::Min | Op::Max if b < a => (b, a),
            _ => (a, b),
        };
        self.intern(Node::Binary(op, a, b))
    }

    pub fn add(&mut self, a: Id, b: Id) -> Id {
        self.binary(Op::Add, a, b)
    }
    pub fn sub(&mut self, a: Id, b: Id) -> Id {
        self.binary(Op::Sub, a, b)
    }
    pub fn mul(&mut self, a: Id, b: Id) -> Id {
        self.binary(Op::Mul, a, b)
    }
    pub fn div(&mut self, a: Id, b: Id) -> Id {
        self.binary(Op::Div, a, b)
    }
    pub fn neg(&mut self, a: Id) -> Id {
        self.unary(Fun::Neg, a)
    }

    /// The partial derivative of `id` with respect to the geometry quantity `wrt`.
    pub fn derivative(&mut self, id: Id, wrt: Geo) -> Id {
        let mut memo = HashMap::new();
        self.diff(id, wrt, &mut memo)
    }

    fn diff(&mut self, id: Id, wrt: Geo, memo: &mut HashMap<Id, Id>) -> Id {
        if let Some(&d) = memo.get(&id) {
            return d;
        }
        let d = match self.node(id) {
            Node::Const(_) | Node::Hyper(_) => self.constant(0.0),
            Node::Geo(g) => self.constant(if g == wrt { 1.0 } else { 0.0 }),
            Node::Unary(f, a) => {
                let da = self.diff(a, wrt, memo);
                if self.is(da, 0.0) {
                    da
                } else {
                    let outer = match f {
                        Fun::Neg => self.constant(-1.0),
                        Fun::Exp => id,
                        Fun::Log => {
                            let one = self.constant(1.0);
                            self.div(one, a)
                        }
                        Fun::Sqrt => {
                            let two = self.constant(2.0);
                            let den = self.mul(two, id);
                            let one = self.constant(1.0);
                            self.div(one, den)
                        }
                        Fun::Abs => self.unary(Fun::Sign, a),
                        Fun::Tanh => {
                            let one = self.constant(1.0);
                            let sq = self.mul(id, id);
                            self.sub(one, sq)
                        }
                        Fun::Sin => self.unary(Fun::Cos, a),
                        Fun::Cos => {
                            let s = self.unary(Fun::Sin, a);
                            self.neg(s)
                        }
                        Fun::Sigmoid => {
                            let one = self.constant(1.0);
                            let rest = self.sub(one, id);
                            self.mul(id, rest)
                        }
                        Fun::Sign => self.constant(0.0),
                    };
                    self.mul(outer, da)
                }
            }
            Node::Binary(op, a, b) => {
                let da = self.diff(a, wrt, memo);
                let db = self.diff(b, wrt, memo);
                self.diff_binary(id, op, a, b, da, db)
            }
        };
        memo.insert(id, d);
        d
    }

    fn diff_binary(&mut self, id: Id, op: Op, a: Id, b: Id, da: Id, db: Id) -> Id {
        match op {
            Op::Add => self.add(da, db),
            Op::Sub => self.sub(da, db),
            Op::Mul => {
                let l = self.mul(da, b);
                let r = self.mul(a, db);
                self.add(l, r)
            }
            Op::Div => {
                // (a/b)' = a'/b - (a/b) b'/b
                let l = self.div(da, b);
                let q = self.mul(id, db);
                let r = self.div(q, b);
                self.sub(l, r)
            }
            Op::Pow => {
                let mut d = self.constant(0.0);
                if !self.is(da, 0.0) {
                    // b a^(b-1) a'
                    let one = self.constant(1.0);
                    let e = self.sub(b, one);
                    let p = self.binary(Op::Pow, a, e);
                    let t = self.mul(b, p);
                    d = self.mul(t, da);
                }
                if !self.is(db, 0.0) {
                    // a^b log(a) b'
                    let l = self.unary(Fun::Log, a);
                    let t = self.mul(id, l);
                    let t = self.mul(t, db);
                    d = self.add(d, t);
                }
                d
            }
            Op::Min | Op::Max => {
                // The derivative of the branch taken (the second one on ties).
                let take_a = if op == Op::Min {
                    self.binary(Op::Less, a, b)
                } else {
                    self.binary(Op::Less, b, a)
                };
                let one = self.constant(1.0);
                let take_b = self.sub(one, take_a);
                let l = self.mul(take_a, da);
                let r = self.mul(take_b, db);
                self.add(l, r)
            }
            Op::Less => self.constant(0.0),
            Op::SafeDiv => {
                // Only built after differentiation; never differentiated itself.
                let l = self.binary(Op::SafeDiv, da, b);
                let q = self.binary(Op::SafeDiv, id, b);
                let r = self.mul(q, db);
                self.sub(l, r)
            }
        }
    }

    /// A copy of the subgraph under `roots` with hyperparameters replaced by
    /// values, simplified again (the hyperparameters fold into constants).
    pub fn substitute(&self, roots: &[Id], values: &[f64]) -> (Graph, Vec<Id>) {
        let mut g = Graph::default();
        let mut map: Vec<Option<Id>> = vec![None; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            if i as Id > roots.iter().copied().max().unwrap_or(0) {
                break;
            }
            let m = |x: Id| map[x as usize].expect("children come first");
            map[i] = Some(match *node {
                Node::Const(bits) => g.constant(f64::from_bits(bits)),
                Node::Geo(q) => g.geo(q),
                Node::Hyper(h) => g.constant(values[h as usize]),
                Node::Unary(f, a) => g.unary(f, m(a)),
                Node::Binary(op, a, b) => g.binary(op, m(a), m(b)),
            });
        }
        let roots = roots
            .iter()
            .map(|r| map[*r as usize].expect("root"))
            .collect();
        (g, roots)
    }

    /// Evaluate one node at one point (tests and constant defaults).
    pub fn eval(&self, id: Id, geo: &[f64; 5], hyper: &[f64]) -> f64 {
        match self.node(id) {
            Node::Const(bits) => f64::from_bits(bits),
            Node::Geo(g) => geo[g as usize],
            Node::Hyper(h) => hyper[h as usize],
            Node::Unary(f, a) => apply_fun(f, self.eval(a, geo, hyper)),
            Node::Binary(op, a, b) => {
                apply_op(op, self.eval(a, geo, hyper), self.eval(b, geo, hyper))
            }
        }
    }

    /// Whether the subgraph under `id` reads the geometry quantity `g`.
    pub fn uses(&self, id: Id, g: Geo) -> bool {
        let mut seen = vec![false; id as usize + 1];
        seen[id as usize] = true;
        for i in (0..=id as usize).rev() {
            if !seen[i] {
                continue;
            }
            match self.nodes[i] {
                Node::Geo(q) if q == g => return true,
                Node::Unary(_, a) => seen[a as usize] = true,
                Node::Binary(_, a, b) => {
                    seen[a as usize] = true;
                    seen[b as usize] = true;
                }
                _ => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplace_derivative_simplifies_and_shares_the_exponential() {
        let mut g = Graph::default();
        let dist = g.geo(Geo::Dist);
        let l = g.constant(10.0);
        let q = g.div(dist, l);
        let n = g.neg(q);
        let k = g.unary(Fun::Exp, n);
        let before = g.nodes.len();
        let d = g.derivative(k, Geo::Dist);
        // exp(-dist/10) * -0.1: the exponential is reused, one new operation.
        let ops = g.nodes[before..]
            .iter()
            .filter(|n| !matches!(n, Node::Const(_)))
            .count();
        assert_eq!(ops, 1, "{:?}", &g.nodes[before..]);
        let geo = [2.0, 4.0, 0.0, 0.0, 0.0];
        assert!((g.eval(d, &geo, &[]) + (-0.2f64).exp() / 10.0).abs() < 1e-15);
        assert_eq!(g.derivative(k, Geo::Dot), g.constant(0.0));
    }

    #[test]
    fn constants_fold_and_commutative_nodes_are_shared() {
        let mut g = Graph::default();
        let three = g.constant(3.0);
        let s = g.unary(Fun::Sqrt, three);
        assert_eq!(g.as_const(s), Some(3f64.sqrt()));
        let (a, b) = (g.geo(Geo::Dot), g.geo(Geo::Xnorm));
        assert_eq!(g.mul(a, b), g.mul(b, a));
        let n = g.neg(a);
        assert_eq!(g.neg(n), a);
    }
}

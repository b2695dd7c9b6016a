//! Scalar expressions over the pair geometry, with symbolic derivatives.
//!
//! A `Graph` is a hash-consed arena: building the same node twice returns the
//! same id, so common subexpressions (the `exp(-dist / L)` that reappears in
//! its own derivative) are shared and computed once. The constructors
//! simplify as they build (constant folding, `x * 1`, `x + 0`, `--x`), which
//! keeps derivatives small without a separate simplifier. Operations are the
//! primitives (`prim`), computed by their own functions, so a body's value
//! is what the same formula gives elementwise in the interpreter.

use std::collections::HashMap;

use crate::prim::{Binary, Derivative, Unary};

/// The pair quantities a kernel body is written over, in `KERNEL_GEOMETRY` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Geo {
    Dist,
    Sqdist,
    Dot,
    Xnorm,
    Znorm,
    /// `Σᵢ mᵢ |xᵢ − zᵢ|`, under a diagonal M.
    L1dist,
}

impl Geo {
    pub const ALL: [Geo; 6] = [
        Geo::Dist,
        Geo::Sqdist,
        Geo::Dot,
        Geo::Xnorm,
        Geo::Znorm,
        Geo::L1dist,
    ];
}

pub type Id = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// The bits of an f64, so that nodes hash.
    Const(u64),
    Geo(Geo),
    /// A hyperparameter, by position in the kernel's head.
    Hyper(u16),
    Unary(Unary, Id),
    Binary(Binary, Id, Id),
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    memo: HashMap<Node, Id>,
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

    /// A constant, with its sign of zero: `1 / -0.0` is `-inf`.
    pub fn constant(&mut self, x: f64) -> Id {
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

    /// Whether `id` is the constant `x` (either zero for `x = 0`).
    fn is(&self, id: Id, x: f64) -> bool {
        self.as_const(id) == Some(x)
    }

    /// Whether `id` is the constant `x`, bit for bit.
    fn is_exactly(&self, id: Id, x: f64) -> bool {
        self.as_const(id)
            .is_some_and(|c| c.to_bits() == x.to_bits())
    }

    pub fn unary(&mut self, f: Unary, a: Id) -> Id {
        if let Some(x) = self.as_const(a) {
            return self.constant(f.apply(x));
        }
        if f == Unary::Neg {
            if let Node::Unary(Unary::Neg, inner) = self.node(a) {
                return inner;
            }
        }
        self.intern(Node::Unary(f, a))
    }

    /// `a op b`, with only the rewrites that hold for every IEEE value
    /// (nan aside): constant folding, `x * 1`, `x / 1`, `x - 0`, `x * -1`,
    /// `x ^ 1`, `x ^ 0`, and one order for commutative operands. A body built
    /// with these computes what its formula computes elementwise, bit for bit.
    pub fn binary(&mut self, op: Binary, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.as_const(a), self.as_const(b)) {
            return self.constant(op.apply(x, y));
        }
        match op {
            Binary::Sub if self.is_exactly(b, 0.0) => return a,
            Binary::Mul if self.is(a, 1.0) => return b,
            Binary::Mul | Binary::Div if self.is(b, 1.0) => return a,
            Binary::Mul if self.is(a, -1.0) => return self.unary(Unary::Neg, b),
            Binary::Mul | Binary::Div if self.is(b, -1.0) => return self.unary(Unary::Neg, a),
            Binary::Pow if self.is(b, 1.0) => return a,
            Binary::Pow if self.is(b, 0.0) => return self.constant(1.0),
            _ => {}
        }
        // Commutative operators in one canonical order, so `a*b` and `b*a` are shared.
        let (a, b) = if op.commutes() && b < a {
            (b, a)
        } else {
            (a, b)
        };
        self.intern(Node::Binary(op, a, b))
    }

    /// `a op b` in a derivative: also the rewrites that hold for finite
    /// values (`0 * x`, `x + 0`, `0 - x`, `x - x`, `0 / x`), so that the terms
    /// of a quantity the body does not read vanish, as they do in the
    /// reference's hand-written gradients.
    pub fn term(&mut self, op: Binary, a: Id, b: Id) -> Id {
        let zero = |g: &Self, x| g.is(x, 0.0);
        match op {
            Binary::Add if zero(self, a) => b,
            Binary::Add | Binary::Sub if zero(self, b) => a,
            Binary::Sub if zero(self, a) => self.unary(Unary::Neg, b),
            Binary::Sub if a == b => self.constant(0.0),
            Binary::Mul | Binary::SafeDiv | Binary::Div if zero(self, a) => self.constant(0.0),
            Binary::Mul if zero(self, b) => self.constant(0.0),
            _ => self.binary(op, a, b),
        }
    }

    pub fn add(&mut self, a: Id, b: Id) -> Id {
        self.term(Binary::Add, a, b)
    }
    pub fn sub(&mut self, a: Id, b: Id) -> Id {
        self.term(Binary::Sub, a, b)
    }
    pub fn mul(&mut self, a: Id, b: Id) -> Id {
        self.term(Binary::Mul, a, b)
    }
    pub fn div(&mut self, a: Id, b: Id) -> Id {
        self.term(Binary::Div, a, b)
    }
    pub fn neg(&mut self, a: Id) -> Id {
        self.unary(Unary::Neg, a)
    }

    /// The partial derivative of `id` with respect to the geometry quantity `wrt`.
    pub fn derivative(&mut self, id: Id, wrt: Geo) -> Id {
        let mut memo = HashMap::new();
        self.diff(id, Node::Geo(wrt), &mut memo)
    }

    /// The partial derivative of `id` with respect to hyperparameter `i`.
    pub fn hyper_derivative(&mut self, id: Id, i: u16) -> Id {
        let mut memo = HashMap::new();
        self.diff(id, Node::Hyper(i), &mut memo)
    }

    /// `wrt` is a `Node::Geo` or a `Node::Hyper`.
    fn diff(&mut self, id: Id, wrt: Node, memo: &mut HashMap<Id, Id>) -> Id {
        if let Some(&d) = memo.get(&id) {
            return d;
        }
        let d = match self.node(id) {
            Node::Const(_) => self.constant(0.0),
            n @ (Node::Geo(_) | Node::Hyper(_)) => self.constant(if n == wrt { 1.0 } else { 0.0 }),
            Node::Unary(f, a) => {
                let da = self.diff(a, wrt, memo);
                match f.derivative() {
                    // Flat almost everywhere (`sign`, made by differentiating `abs`).
                    None => self.constant(0.0),
                    Some(_) if self.is(da, 0.0) => da,
                    Some(d) => {
                        let outer = self.derivative_of(d, a, id);
                        self.mul(outer, da)
                    }
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

    fn diff_binary(&mut self, id: Id, op: Binary, a: Id, b: Id, da: Id, db: Id) -> Id {
        match op {
            Binary::Add => self.add(da, db),
            Binary::Sub => self.sub(da, db),
            Binary::Mul => {
                let l = self.mul(da, b);
                let r = self.mul(a, db);
                self.add(l, r)
            }
            Binary::Div => {
                // (a/b)' = a'/b - (a/b) b'/b
                let l = self.div(da, b);
                let q = self.mul(id, db);
                let r = self.div(q, b);
                self.sub(l, r)
            }
            Binary::Pow => {
                let mut d = self.constant(0.0);
                if !self.is(da, 0.0) {
                    // b a^(b-1) a'
                    let one = self.constant(1.0);
                    let e = self.sub(b, one);
                    let p = self.term(Binary::Pow, a, e);
                    let t = self.mul(b, p);
                    d = self.mul(t, da);
                }
                if !self.is(db, 0.0) {
                    // a^b log(a) b'
                    let l = self.unary(Unary::Log, a);
                    let t = self.mul(id, l);
                    let t = self.mul(t, db);
                    d = self.add(d, t);
                }
                d
            }
            Binary::Min | Binary::Max => {
                // The derivative of the branch taken (the second one on ties).
                let take_a = if op == Binary::Min {
                    self.binary(Binary::Lt, a, b)
                } else {
                    self.binary(Binary::Lt, b, a)
                };
                let one = self.constant(1.0);
                let take_b = self.sub(one, take_a);
                let l = self.mul(take_a, da);
                let r = self.mul(take_b, db);
                self.add(l, r)
            }
            Binary::Eq
            | Binary::Ne
            | Binary::Lt
            | Binary::Le
            | Binary::Gt
            | Binary::Ge
            | Binary::FloorDiv => self.constant(0.0),
            Binary::Rem => {
                // a % b = a - floor(a / b) b: a' - floor(a / b) b' almost everywhere.
                let q = self.div(a, b);
                let f = self.unary(Unary::Floor, q);
                let r = self.mul(f, db);
                self.sub(da, r)
            }
            Binary::SafeDiv => {
                // Only built after differentiation; never differentiated itself.
                let l = self.term(Binary::SafeDiv, da, b);
                let q = self.term(Binary::SafeDiv, id, b);
                let r = self.mul(q, db);
                self.sub(l, r)
            }
        }
    }

    /// The nodes of a primitive's derivative at `x`, whose value is `y`.
    fn derivative_of(&mut self, d: Derivative, x: Id, y: Id) -> Id {
        match d {
            Derivative::MinusOne => self.constant(-1.0),
            Derivative::Value => y,
            Derivative::Reciprocal => {
                let one = self.constant(1.0);
                self.div(one, x)
            }
            Derivative::HalfOverValue => {
                let half = self.constant(0.5);
                self.div(half, y)
            }
            Derivative::OneMinusValueSquared => {
                let one = self.constant(1.0);
                let sq = self.mul(y, y);
                self.sub(one, sq)
            }
            Derivative::ValueTimesOneMinusValue => {
                let one = self.constant(1.0);
                let rest = self.sub(one, y);
                self.mul(y, rest)
            }
            Derivative::Step => {
                let zero = self.constant(0.0);
                self.binary(Binary::Lt, zero, x)
            }
            Derivative::Sign => self.unary(Unary::Sign, x),
            Derivative::Cos => self.unary(Unary::Cos, x),
            Derivative::MinusSin => {
                let s = self.unary(Unary::Sin, x);
                self.neg(s)
            }
        }
    }

    /// A copy of the subgraph under `roots` with hyperparameters replaced by
    /// values, simplified again (the hyperparameters fold into constants).
    pub fn substitute(&self, roots: &[Id], values: &[f64]) -> (Graph, Vec<Id>) {
        let mut g = Graph::default();
        let top = roots.iter().copied().max().unwrap_or(0);
        let map = self.copy_nodes(&mut g, top, values);
        let roots = roots.iter().map(|r| map[*r as usize]).collect();
        (g, roots)
    }

    /// Copy the subgraph under `root` into `target` (sharing the nodes it
    /// already has), hyperparameters replaced by `values`; the copy's id.
    pub fn copy_into(&self, target: &mut Graph, root: Id, values: &[f64]) -> Id {
        self.copy_nodes(target, root, values)[root as usize]
    }

    /// The ids in `target` of nodes `0..=top`.
    fn copy_nodes(&self, target: &mut Graph, top: Id, values: &[f64]) -> Vec<Id> {
        let mut map: Vec<Id> = Vec::with_capacity(top as usize + 1);
        for node in self.nodes.iter().take(top as usize + 1) {
            let id = match *node {
                Node::Const(bits) => target.constant(f64::from_bits(bits)),
                Node::Geo(q) => target.geo(q),
                Node::Hyper(h) => target.constant(values[h as usize]),
                Node::Unary(f, a) => target.unary(f, map[a as usize]),
                Node::Binary(op, a, b) => target.binary(op, map[a as usize], map[b as usize]),
            };
            map.push(id);
        }
        map
    }

    /// Evaluate one node at one point (tests and constant defaults).
    pub fn eval(&self, id: Id, geo: &[f64; 6], hyper: &[f64]) -> f64 {
        match self.node(id) {
            Node::Const(bits) => f64::from_bits(bits),
            Node::Geo(g) => geo[g as usize],
            Node::Hyper(h) => hyper[h as usize],
            Node::Unary(f, a) => f.apply(self.eval(a, geo, hyper)),
            Node::Binary(op, a, b) => op.apply(self.eval(a, geo, hyper), self.eval(b, geo, hyper)),
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
        let k = g.unary(Unary::Exp, n);
        let before = g.nodes.len();
        let d = g.derivative(k, Geo::Dist);
        // exp(-dist/10) * -0.1: the exponential is reused, one new operation.
        let ops = g.nodes[before..]
            .iter()
            .filter(|n| !matches!(n, Node::Const(_)))
            .count();
        assert_eq!(ops, 1, "{:?}", &g.nodes[before..]);
        let geo = [2.0, 4.0, 0.0, 0.0, 0.0, 0.0];
        assert!((g.eval(d, &geo, &[]) + crate::prim::math::exp(-0.2) / 10.0).abs() < 1e-15);
        assert_eq!(g.derivative(k, Geo::Dot), g.constant(0.0));
    }

    #[test]
    fn constants_fold_and_commutative_nodes_are_shared() {
        let mut g = Graph::default();
        let three = g.constant(3.0);
        let s = g.unary(Unary::Sqrt, three);
        assert_eq!(g.as_const(s), Some(3f64.sqrt()));
        let (a, b) = (g.geo(Geo::Dot), g.geo(Geo::Xnorm));
        assert_eq!(g.mul(a, b), g.mul(b, a));
        let n = g.neg(a);
        assert_eq!(g.neg(n), a);
    }
}

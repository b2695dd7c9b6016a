//! Lowers pest pairs into the AST. Nothing here evaluates.
//!
//! Each grammar rule has a `lower_<rule>` function. Operator precedence is
//! resolved by pest's `PrattParser`; the number of operators in one expression
//! is bounded so that the tree depth (and every recursion over it) stays small.

use std::rc::Rc;
use std::sync::LazyLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::*;
use super::Rule;
use crate::diag::{Diag, Span};

/// Most operators in one expression (a longer chain is refused, not parsed).
pub const MAX_OPERATORS: usize = 512;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::range, Assoc::Left) | Op::infix(Rule::range_incl, Assoc::Left))
        .op(Op::infix(Rule::or, Assoc::Left))
        .op(Op::infix(Rule::and, Assoc::Left))
        .op(Op::prefix(Rule::not))
        .op(Op::infix(Rule::eq, Assoc::Left)
            | Op::infix(Rule::ne, Assoc::Left)
            | Op::infix(Rule::lt, Assoc::Left)
            | Op::infix(Rule::le, Assoc::Left)
            | Op::infix(Rule::gt, Assoc::Left)
            | Op::infix(Rule::ge, Assoc::Left))
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left)
            | Op::infix(Rule::div, Assoc::Left)
            | Op::infix(Rule::floordiv, Assoc::Left)
            | Op::infix(Rule::rem, Assoc::Left)
            | Op::infix(Rule::matmul, Assoc::Left))
        .op(Op::prefix(Rule::neg))
        .op(Op::infix(Rule::pow, Assoc::Right))
});

type R<T> = Result<T, Diag>;

struct Lowerer {
    file: u32,
}

pub fn lower_program(pair: Pair<Rule>, file: u32) -> R<Module> {
    let l = Lowerer { file };
    let span = l.span(&pair);
    let mut stmts = Vec::new();
    for p in pair.into_inner() {
        if p.as_rule() != Rule::EOI {
            stmts.push(l.lower_stmt(p)?);
        }
    }
    Ok(Module {
        stmts,
        span,
        frame_size: Default::default(),
    })
}

fn ident_of(pair: Pair<Rule>, file: u32) -> Ident {
    let s = pair.as_span();
    Ident {
        name: Rc::from(pair.as_str()),
        span: Span::new(file, s.start(), s.end()),
    }
}

impl Lowerer {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        ident_of(pair, self.file)
    }

    fn expr(&self, kind: ExprKind, span: Span) -> Expr {
        Expr { kind, span }
    }

    fn lower_stmt(&self, pair: Pair<Rule>) -> R<Expr> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        if rule == Rule::expr {
            return self.lower_expr(pair);
        }
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::let_stmt => {
                inner.next(); // kw_let
                let pat = self.lower_pattern(next(&mut inner, span)?)?;
                let value = self.lower_expr(next(&mut inner, span)?)?;
                ExprKind::Let(pat, Box::new(value))
            }
            Rule::assign_stmt => {
                let place = self.lower_place(next(&mut inner, span)?)?;
                let op = match next(&mut inner, span)?.as_str() {
                    "+=" => Some(BinOp::Add),
                    "-=" => Some(BinOp::Sub),
                    "*=" => Some(BinOp::Mul),
                    "/=" => Some(BinOp::Div),
                    _ => None,
                };
                let value = self.lower_expr(next(&mut inner, span)?)?;
                ExprKind::Assign(place, op, Box::new(value))
            }
            Rule::for_stmt => {
                inner.next();
                let pat = self.lower_pattern(next(&mut inner, span)?)?;
                inner.next(); // kw_in
                let iter = self.lower_expr(next(&mut inner, span)?)?;
                let body = self.lower_block(next(&mut inner, span)?)?;
                ExprKind::For(pat, Box::new(iter), body)
            }
            Rule::while_stmt => {
                inner.next();
                let cond = self.lower_expr(next(&mut inner, span)?)?;
                let body = self.lower_block(next(&mut inner, span)?)?;
                ExprKind::While(Box::new(cond), body)
            }
            Rule::break_stmt => ExprKind::Break,
            Rule::continue_stmt => ExprKind::Continue,
            Rule::return_stmt => {
                inner.next();
                match inner.next() {
                    Some(e) => ExprKind::Return(Some(Box::new(self.lower_expr(e)?))),
                    None => ExprKind::Return(None),
                }
            }
            Rule::fn_decl | Rule::loss_decl | Rule::proc_decl | Rule::kernel_decl => {
                inner.next(); // keyword
                let name = self.ident(next(&mut inner, span)?);
                let params = self.lower_params(next(&mut inner, span)?)?;
                let body = self.lower_body(next(&mut inner, span)?)?;
                let def = Rc::new(FnDef::new(name, params, body, span));
                match rule {
                    Rule::fn_decl => ExprKind::Fn(def),
                    Rule::loss_decl => ExprKind::Loss(def),
                    Rule::proc_decl => ExprKind::Proc(def),
                    _ => ExprKind::Kernel(def),
                }
            }
            Rule::model_decl => {
                inner.next();
                let name = self.ident(next(&mut inner, span)?);
                let params = self.lower_params(next(&mut inner, span)?)?;
                let body = next(&mut inner, span)?;
                let mut items = Vec::new();
                for item in body.into_inner() {
                    let item_span = self.span(&item);
                    match item.as_rule() {
                        Rule::param_decl => {
                            let mut it = item.into_inner().skip(1);
                            let name = Name::new(self.ident(next(&mut it, item_span)?));
                            let init = self.lower_expr(next(&mut it, item_span)?)?;
                            let lr = match it.next() {
                                Some(lr) => Some(self.lower_expr(inner_pair_of(
                                    Rule::lr_scale,
                                    item_span,
                                    lr.into_inner().skip(1),
                                )?)?),
                                None => None,
                            };
                            items.push(ModelItem::Param { name, init, lr });
                        }
                        Rule::forward_decl => {
                            let mut it = item.into_inner().skip(1);
                            let params = self.lower_params(next(&mut it, item_span)?)?;
                            let body = self.lower_body(next(&mut it, item_span)?)?;
                            let fname = Ident {
                                name: Rc::from("forward"),
                                span: item_span,
                            };
                            items.push(ModelItem::Forward(Rc::new(FnDef::new(
                                fname, params, body, item_span,
                            ))));
                        }
                        _ => {
                            let mut it = item.into_inner();
                            it.next();
                            let pat = self.lower_pattern(next(&mut it, item_span)?)?;
                            let value = self.lower_expr(next(&mut it, item_span)?)?;
                            items.push(ModelItem::Let(pat, value));
                        }
                    }
                }
                ExprKind::Model(Rc::new(ModelDef {
                    name,
                    params,
                    items,
                    span,
                    binding: Default::default(),
                    frame_size: Default::default(),
                }))
            }
            Rule::use_decl => {
                inner.next();
                let target_pair = next(&mut inner, span)?;
                let alias = inner.nth(1).map(|p| self.ident(p));
                let (target, default_name) = match target_pair.as_rule() {
                    Rule::module_path => {
                        let parts: Vec<Ident> =
                            target_pair.into_inner().map(|p| self.ident(p)).collect();
                        if parts[0].name.as_ref() != "std" || parts.len() != 2 {
                            return Err(Diag::new(
                                "flx::module::path",
                                "a module path is `std.NAME`",
                            )
                            .at(span)
                            .help("load a file beside the script with `use \"file.flx\"`"));
                        }
                        let binding = parts[parts.len() - 1].clone();
                        (UseTarget::Std(parts), binding)
                    }
                    _ => {
                        let s_span = self.span(&target_pair);
                        let path = self.plain_string(target_pair)?;
                        let stem = std::path::Path::new(&path)
                            .file_stem()
                            .and_then(|s| s.to_str())
                            .unwrap_or("")
                            .to_string();
                        let valid = !stem.is_empty()
                            && stem
                                .chars()
                                .next()
                                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                            && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                        if alias.is_none() && !valid {
                            return Err(Diag::new("flx::module::name", format!("`{stem}` is not a valid name for the module"))
                                .at(s_span)
                                .help("bind it to a name with `as`, e.g. `use \"my-helpers.flx\" as helpers`"));
                        }
                        (
                            UseTarget::File(path, s_span),
                            Ident {
                                name: Rc::from(stem.as_str()),
                                span: s_span,
                            },
                        )
                    }
                };
                let binding = Name::new(alias.unwrap_or(default_name));
                ExprKind::Use(UseDecl {
                    target,
                    binding,
                    module: Default::default(),
                })
            }
            other => return Err(internal(span, other)),
        };
        Ok(self.expr(kind, span))
    }

    fn lower_body(&self, pair: Pair<Rule>) -> R<Expr> {
        if pair.as_rule() == Rule::block {
            let span = self.span(&pair);
            Ok(self.expr(ExprKind::Block(self.lower_block(pair)?), span))
        } else {
            self.lower_expr(pair)
        }
    }

    fn lower_params(&self, pair: Pair<Rule>) -> R<Vec<Param>> {
        let mut params: Vec<Param> = Vec::new();
        for p in pair.into_inner() {
            let mut it = p.into_inner();
            let name = self.ident(it.next().expect("param has a name"));
            let default = match it.next() {
                Some(e) => Some(self.lower_expr(e)?),
                None => None,
            };
            if default.is_none() {
                if let Some(prev) = params.iter().rev().find(|p| p.default.is_some()) {
                    return Err(Diag::new(
                        "flx::syntax::param_order",
                        format!(
                            "parameter `{}` without a default follows one with a default",
                            name.name
                        ),
                    )
                    .at(name.span)
                    .with_label(prev.name.ident.span, "this one has a default"));
                }
            }
            params.push(Param {
                name: Name::new(name),
                default,
            });
        }
        Ok(params)
    }

    fn lower_block(&self, pair: Pair<Rule>) -> R<Block> {
        let span = self.span(&pair);
        let stmts = pair
            .into_inner()
            .map(|p| self.lower_stmt(p))
            .collect::<R<Vec<_>>>()?;
        Ok(Block { stmts, span })
    }

    fn lower_pattern(&self, pair: Pair<Rule>) -> R<Pattern> {
        match pair.as_rule() {
            Rule::ident => Ok(Pattern::Bind(Name::new(self.ident(pair)))),
            _ => {
                let span = self.span(&pair);
                let parts = pair
                    .into_inner()
                    .map(|p| self.lower_pattern(p))
                    .collect::<R<Vec<_>>>()?;
                Ok(Pattern::Tuple(parts, span))
            }
        }
    }

    fn lower_place(&self, pair: Pair<Rule>) -> R<Place> {
        let span = self.span(&pair);
        let mut it = pair.into_inner();
        let root = Name::new(self.ident(next(&mut it, span)?));
        let mut path = Vec::new();
        for step in it {
            let s = self.span(&step);
            match step.as_rule() {
                Rule::index => path.push(PlaceStep::Index(self.lower_index(step)?, s)),
                _ => path.push(PlaceStep::Field(self.ident(inner_pair_of(
                    Rule::field,
                    s,
                    step.into_inner(),
                )?))),
            }
        }
        Ok(Place { root, path, span })
    }

    fn lower_expr(&self, pair: Pair<Rule>) -> R<Expr> {
        let span = self.span(&pair);
        let inner = pair.into_inner();
        let operators = inner
            .clone()
            .filter(|p| p.as_rule() != Rule::postfix)
            .count();
        if operators > MAX_OPERATORS {
            return Err(Diag::new(
                "flx::syntax::too_long",
                format!("expression has more than {MAX_OPERATORS} operators"),
            )
            .at(span)
            .help("split it into several `let` bindings"));
        }
        PRATT
            .map_primary(|p| self.lower_postfix(p))
            .map_prefix(|op, rhs| {
                let rhs = rhs?;
                let span = self.span(&op).to(rhs.span);
                let op = if op.as_rule() == Rule::neg {
                    UnOp::Neg
                } else {
                    UnOp::Not
                };
                // Fold `-1.5` into a literal (constants print and compare as written).
                Ok(match (op, rhs.kind) {
                    (UnOp::Neg, ExprKind::Float(f)) => self.expr(ExprKind::Float(-f), span),
                    (op, kind) => self.expr(
                        ExprKind::Unary(
                            op,
                            Box::new(Expr {
                                kind,
                                span: rhs.span,
                            }),
                        ),
                        span,
                    ),
                })
            })
            .map_infix(|lhs, op, rhs| {
                let (lhs, rhs) = (lhs?, rhs?);
                let span = lhs.span.to(rhs.span);
                let op_span = self.span(&op);
                let binop = match op.as_rule() {
                    Rule::range | Rule::range_incl => {
                        return Ok(self.expr(
                            ExprKind::Range {
                                start: Box::new(lhs),
                                end: Box::new(rhs),
                                inclusive: op.as_rule() == Rule::range_incl,
                            },
                            span,
                        ))
                    }
                    Rule::or => BinOp::Or,
                    Rule::and => BinOp::And,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::floordiv => BinOp::FloorDiv,
                    Rule::rem => BinOp::Rem,
                    Rule::matmul => BinOp::MatMul,
                    Rule::pow => BinOp::Pow,
                    other => return Err(internal(op_span, other)),
                };
                if binop.is_comparison() {
                    if let ExprKind::Binary(inner, ..) = &lhs.kind {
                        if inner.is_comparison() {
                            return Err(Diag::new(
                                "flx::syntax::chained_comparison",
                                "comparisons cannot be chained",
                            )
                            .at(span)
                            .help("write `a < b and b < c`"));
                        }
                    }
                }
                if let (ExprKind::Range { .. }, true) = (
                    &lhs.kind,
                    matches!(op.as_rule(), Rule::range | Rule::range_incl),
                ) {
                    return Err(
                        Diag::new("flx::syntax::range", "ranges cannot be chained").at(op_span)
                    );
                }
                Ok(self.expr(ExprKind::Binary(binop, Box::new(lhs), Box::new(rhs)), span))
            })
            .parse(inner)
    }

    fn lower_postfix(&self, pair: Pair<Rule>) -> R<Expr> {
        let mut it = pair.into_inner();
        let first = it.next().expect("postfix has a primary");
        let mut e = self.lower_primary(first)?;
        for suffix in it {
            let s = self.span(&suffix);
            let span = e.span.to(s);
            e = match suffix.as_rule() {
                Rule::call_args => {
                    let args = self.lower_args(suffix)?;
                    self.expr(ExprKind::Call(Box::new(e), args), span)
                }
                Rule::index => {
                    let items = self.lower_index(suffix)?;
                    self.expr(ExprKind::Index(Box::new(e), items), span)
                }
                _ => {
                    let name = self.ident(inner_pair_of(Rule::field, s, suffix.into_inner())?);
                    self.expr(ExprKind::Field(Box::new(e), name), span)
                }
            };
        }
        Ok(e)
    }

    fn lower_args(&self, pair: Pair<Rule>) -> R<Vec<Arg>> {
        let mut args = Vec::new();
        for arg in pair.into_inner() {
            let mut it = arg.into_inner();
            let first = it.next().expect("arg is not empty");
            if first.as_rule() == Rule::arg_name {
                let name = self.ident(first.into_inner().next().expect("arg_name holds a name"));
                let value = self.lower_expr(it.next().expect("named arg has a value"))?;
                args.push(Arg {
                    name: Some(name),
                    value,
                });
            } else {
                args.push(Arg {
                    name: None,
                    value: self.lower_expr(first)?,
                });
            }
        }
        Ok(args)
    }

    fn lower_index(&self, pair: Pair<Rule>) -> R<Vec<IndexItem>> {
        let mut items = Vec::new();
        for item in pair.into_inner() {
            if item.as_rule() == Rule::slice {
                let span = self.span(&item);
                let (mut start, mut stop, mut step) = (None, None, None);
                for part in item.into_inner() {
                    let rule = part.as_rule();
                    let e = self
                        .lower_expr(part.into_inner().next().expect("slice bound holds an expr"))?;
                    match rule {
                        Rule::slice_start => start = Some(e),
                        Rule::slice_stop => stop = Some(e),
                        _ => step = Some(e),
                    }
                }
                items.push(IndexItem::Slice {
                    start,
                    stop,
                    step,
                    span,
                });
            } else {
                items.push(IndexItem::At(self.lower_expr(item)?));
            }
        }
        Ok(items)
    }

    fn lower_primary(&self, pair: Pair<Rule>) -> R<Expr> {
        let span = self.span(&pair);
        let kind =
            match pair.as_rule() {
                Rule::int => {
                    let digits: String = pair.as_str().chars().filter(|&c| c != '_').collect();
                    match digits.parse::<i64>() {
                        Ok(v) => ExprKind::Int(v),
                        Err(_) => return Err(Diag::new(
                            "flx::syntax::int_range",
                            "integer literal is too large",
                        )
                        .at(span)
                        .help(
                            "integers are 64-bit; write a float such as `1e20` for larger numbers",
                        )),
                    }
                }
                Rule::float => {
                    let digits: String = pair.as_str().chars().filter(|&c| c != '_').collect();
                    ExprKind::Float(digits.parse::<f64>().map_err(|_| {
                        Diag::new("flx::syntax::float", "malformed number").at(span)
                    })?)
                }
                Rule::string => ExprKind::Str(self.lower_string(pair)?),
                Rule::kw_true => ExprKind::Bool(true),
                Rule::kw_false => ExprKind::Bool(false),
                Rule::kw_none => ExprKind::None,
                Rule::ident => ExprKind::Name(Name::new(self.ident(pair))),
                Rule::block => ExprKind::Block(self.lower_block(pair)?),
                Rule::if_expr => return self.lower_if(pair),
                Rule::try_expr => {
                    let mut it = pair
                        .into_inner()
                        .filter(|p| !matches!(p.as_rule(), Rule::kw_try | Rule::kw_catch));
                    let body = self.lower_block(next(&mut it, span)?)?;
                    let name = Name::new(self.ident(next(&mut it, span)?));
                    let handler = self.lower_block(next(&mut it, span)?)?;
                    ExprKind::Try(body, name, handler)
                }
                Rule::lambda => {
                    let mut params = Vec::new();
                    let mut body = None;
                    for p in pair.into_inner() {
                        if p.as_rule() == Rule::ident {
                            params.push(Param {
                                name: Name::new(self.ident(p)),
                                default: None,
                            });
                        } else {
                            body = Some(self.lower_expr(p)?);
                        }
                    }
                    let body = body.ok_or_else(|| internal(span, Rule::lambda))?;
                    let name = Ident {
                        name: Rc::from("<closure>"),
                        span,
                    };
                    ExprKind::Lambda(Rc::new(FnDef::new(name, params, body, span)))
                }
                Rule::record => {
                    let mut fields: Vec<(Ident, Expr)> = Vec::new();
                    for f in pair.into_inner() {
                        let mut it = f.into_inner();
                        let name = self.ident(it.next().expect("field has a name"));
                        if let Some((prev, _)) = fields.iter().find(|(n, _)| n.name == name.name) {
                            return Err(Diag::new(
                                "flx::syntax::duplicate_field",
                                format!("field `{}` is given twice", name.name),
                            )
                            .at(name.span)
                            .with_label(prev.span, "first given here"));
                        }
                        let value = self.lower_expr(it.next().expect("field has a value"))?;
                        fields.push((name, value));
                    }
                    ExprKind::Record(fields)
                }
                Rule::paren => {
                    let mut items = Vec::new();
                    let mut trailing = false;
                    for p in pair.into_inner() {
                        if p.as_rule() == Rule::trailing_comma {
                            trailing = true;
                        } else {
                            items.push(self.lower_expr(p)?);
                        }
                    }
                    if items.len() == 1 && !trailing {
                        let mut e = items.pop().expect("one item");
                        e.span = span;
                        return Ok(e);
                    }
                    ExprKind::Tuple(items)
                }
                Rule::list => {
                    let parts: Vec<Pair<Rule>> = pair.into_inner().collect();
                    match parts.as_slice() {
                        [elem, comp] if comp.as_rule() == Rule::comprehension => {
                            let elem = self.lower_expr(elem.clone())?;
                            let clauses = self.lower_clauses(comp.clone())?;
                            ExprKind::Comprehension(Box::new(elem), clauses)
                        }
                        _ => ExprKind::List(
                            parts
                                .into_iter()
                                .map(|p| self.lower_expr(p))
                                .collect::<R<Vec<_>>>()?,
                        ),
                    }
                }
                other => return Err(internal(span, other)),
            };
        Ok(self.expr(kind, span))
    }

    /// The `for` and `if` clauses of a comprehension, in order.
    fn lower_clauses(&self, pair: Pair<Rule>) -> R<Vec<Clause>> {
        let mut out = Vec::new();
        for f in pair.into_inner() {
            let span = self.span(&f);
            let mut inner = f.into_inner();
            inner.next(); // kw_for
            let pat = self.lower_pattern(next(&mut inner, span)?)?;
            inner.next(); // kw_in
            let iter = self.lower_expr(next(&mut inner, span)?)?;
            out.push(Clause::For(pat, iter));
            for c in inner {
                let span = self.span(&c);
                let mut parts = c.into_inner();
                parts.next(); // kw_if
                out.push(Clause::If(self.lower_expr(next(&mut parts, span)?)?));
            }
        }
        Ok(out)
    }

    fn lower_if(&self, pair: Pair<Rule>) -> R<Expr> {
        let span = self.span(&pair);
        let mut it = pair
            .into_inner()
            .filter(|p| !matches!(p.as_rule(), Rule::kw_if | Rule::kw_else));
        let cond = self.lower_expr(next(&mut it, span)?)?;
        let then = self.lower_block(next(&mut it, span)?)?;
        let otherwise = match it.next() {
            Some(p) if p.as_rule() == Rule::if_expr => Some(Box::new(self.lower_if(p)?)),
            Some(p) => {
                let s = self.span(&p);
                Some(Box::new(
                    self.expr(ExprKind::Block(self.lower_block(p)?), s),
                ))
            }
            None => None,
        };
        Ok(self.expr(ExprKind::If(Box::new(cond), then, otherwise), span))
    }

    fn lower_string(&self, pair: Pair<Rule>) -> R<Vec<StrPart>> {
        let mut parts = Vec::new();
        let mut text = String::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::string_text => text.push_str(p.as_str()),
                Rule::escape => {
                    let span = self.span(&p);
                    let s = p.as_str();
                    text.push(match s {
                        "{{" => '{',
                        "}}" => '}',
                        "\\n" => '\n',
                        "\\t" => '\t',
                        "\\r" => '\r',
                        "\\\\" => '\\',
                        "\\\"" => '"',
                        "\\0" => '\0',
                        "\\{" => '{',
                        "\\}" => '}',
                        _ => {
                            return Err(Diag::new(
                                "flx::syntax::escape",
                                format!("unknown escape `{s}`"),
                            )
                            .at(span)
                            .help(
                                "known escapes: \\n \\t \\r \\\\ \\\" \\0, and {{ }} for braces",
                            ))
                        }
                    });
                }
                _ => {
                    if !text.is_empty() {
                        parts.push(StrPart::Text(std::mem::take(&mut text)));
                    }
                    let mut it = p.into_inner();
                    let expr = self.lower_expr(it.next().expect("interpolation holds an expr"))?;
                    let spec = it.next().map(|s| (s.as_str().to_string(), self.span(&s)));
                    parts.push(StrPart::Interp { expr, spec });
                }
            }
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(StrPart::Text(text));
        }
        Ok(parts)
    }

    /// A string with no interpolation (module paths).
    fn plain_string(&self, pair: Pair<Rule>) -> R<String> {
        let span = self.span(&pair);
        let parts = self.lower_string(pair)?;
        match parts.as_slice() {
            [StrPart::Text(t)] => Ok(t.clone()),
            _ => {
                Err(Diag::new("flx::module::path", "a module path cannot contain `{...}`").at(span))
            }
        }
    }
}

fn next<'i>(it: &mut impl Iterator<Item = Pair<'i, Rule>>, span: Span) -> R<Pair<'i, Rule>> {
    it.next()
        .ok_or_else(|| Diag::new("flx::internal", "malformed syntax tree").at(span))
}

fn inner_pair_of<'i>(
    rule: Rule,
    span: Span,
    mut it: impl Iterator<Item = Pair<'i, Rule>>,
) -> R<Pair<'i, Rule>> {
    it.next().ok_or_else(|| internal(span, rule))
}

fn internal(span: Span, rule: Rule) -> Diag {
    Diag::new(
        "flx::internal",
        format!("internal error: unexpected syntax node {rule:?}"),
    )
    .at(span)
    .help("this is a bug in flx; please report it with the input")
}

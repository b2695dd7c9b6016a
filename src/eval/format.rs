//! How values print: floats as Python's `repr` (shortest round-trip), tensors
//! as NumPy's `str` (common format per tensor, abbreviated past 1000 entries
//! with 3 items at each edge) followed by their shape, and `{x:spec}` format
//! specs with Python's mini-language.

use ndarray::{ArrayViewD, Axis};

use super::value::Value;
use crate::format::{float_repr, shape_str};

/// NumPy's `threshold` and `edgeitems` defaults.
const THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;

/// How `print` shows a value: strings bare, everything else as in `repr`.
pub fn display(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        _ => repr(v),
    }
}

/// How a value shows inside containers and in the REPL.
pub fn repr(v: &Value) -> String {
    match v {
        Value::None => "none".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_repr(*f),
        Value::Str(s) => format!("{s:?}"),
        Value::Tensor(t) => tensor_str(t),
        Value::IntTensor(t) => int_tensor_str(t),
        Value::BoolTensor(t) => bool_tensor_str(t),
        Value::Tuple(items) => {
            let inner: Vec<String> = items.iter().map(repr).collect();
            if items.len() == 1 {
                format!("({},)", inner[0])
            } else {
                format!("({})", inner.join(", "))
            }
        }
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Record(r) => {
            let inner: Vec<String> = r
                .fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Range(r) => format!("{}..{}", r.0, r.1),
        Value::Func(c) => format!("<fn {}>", c.def.name.name),
        Value::Builtin(b) => match super::builtins::TABLE.get(*b as usize) {
            Some(builtin) => format!("<builtin {}>", builtin.name),
            None => "<host function>".to_string(),
        },
        Value::Module(_) => "<module>".into(),
        Value::Kernel(k) => kernel_repr(k),
        Value::Predictor(p) => {
            let outputs = if p.alpha.ndim() == 1 {
                1
            } else {
                p.alpha.shape()[1]
            };
            let pool = p
                .pool
                .map_or(String::new(), |pool| format!(", pool \"{}\"", pool.name()));
            let solver = match p.solver {
                crate::kernel::Solver::Cholesky { refined: None } => String::new(),
                crate::kernel::Solver::Cholesky {
                    refined: Some(steps),
                } => format!(
                    ", cholesky in f32 ({steps} refinement step{})",
                    if steps == 1 { "" } else { "s" }
                ),
                crate::kernel::Solver::Nystrom { iters, .. } => {
                    format!(", nystrom ({iters} CG iterations)")
                }
            };
            format!(
                "<predictor krr {}, {} → {outputs}{pool}, reg {}{solver}>",
                kernel_repr(&p.kernel),
                dims(p.centers.shape()),
                float_repr(p.reg)
            )
        }
        Value::Cell(c) => repr(&c.borrow()),
        Value::Undefined => "<undefined>".into(),
        Value::Traced(t) => repr(&t.primal),
        Value::Transform(d) => format!("<{} of {}>", d.kind.name(), repr(&d.f)),
        Value::ModelDecl(d) => format!("<model declaration {}>", d.name.name),
        Value::Model(m) => m.repr(),
        Value::ModelWith(m) => format!("<with of {}>", m.repr()),
        Value::Progress(p) => format!("progress({})", repr(&p.0)),
    }
}

/// `6 × 3`.
fn dims(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    dims.join(" × ")
}

/// `laplace(L: 5.0)`; a hyperparameter without a value shows as `L: ?`. A
/// combination shows as its expression, parenthesised where needed.
pub fn kernel_repr(k: &crate::kernel::Kernel) -> String {
    kernel_expr(k).0
}

/// The text of a kernel and its precedence (1 `+`, 2 `*`, 3 `^`, 4 an instance).
fn kernel_expr(k: &crate::kernel::Kernel) -> (String, u8) {
    use crate::kernel::Form;
    let part = |k: &crate::kernel::Kernel, at_least: u8| {
        let (text, prec) = kernel_expr(k);
        if prec < at_least {
            format!("({text})")
        } else {
            text
        }
    };
    match &k.form {
        Form::Instance { family, values } => {
            let args: Vec<String> = family
                .params
                .iter()
                .zip(values)
                .map(|(p, v)| match v {
                    Some(v) => format!("{p}: {}", float_repr(*v)),
                    None => format!("{p}: ?"),
                })
                .collect();
            (format!("{}({})", family.name, args.join(", ")), 4)
        }
        Form::Sum(a, b) => (format!("{} + {}", part(a, 1), part(b, 1)), 1),
        Form::Product(a, b) => (format!("{} * {}", part(a, 2), part(b, 3)), 2),
        Form::Scaled(c, a) => (format!("{} * {}", float_repr(*c), part(a, 3)), 2),
        Form::Power(a, p) => (format!("{} ^ {p}", part(a, 4)), 3),
    }
}

/// The per-tensor element format NumPy chooses (`floatmode='maxprec'`, precision 8).
struct ElementFormat {
    scientific: bool,
    /// Digits after the point (fixed) or in the mantissa (scientific).
    precision: usize,
    all_integers: bool,
    width: usize,
}

fn choose_format(values: &[f64]) -> ElementFormat {
    let finite: Vec<f64> = values.iter().cloned().filter(|x| x.is_finite()).collect();
    let abs_max = finite.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let abs_min_nonzero = finite
        .iter()
        .filter(|x| **x != 0.0)
        .fold(f64::INFINITY, |m, x| m.min(x.abs()));
    let all_integers = finite.iter().all(|x| x.fract() == 0.0);
    let scientific = !finite.is_empty()
        && (abs_max >= 1e8
            || (abs_min_nonzero < 1e-4 && !all_integers)
            || (abs_min_nonzero.is_finite() && abs_max / abs_min_nonzero > 1e3 && !all_integers));
    let precision = if all_integers && !scientific {
        0
    } else {
        finite
            .iter()
            .map(|&x| {
                if scientific {
                    let s = format!("{:.8e}", x);
                    let m = s.split('e').next().unwrap_or("");
                    let frac = m.split('.').nth(1).unwrap_or("");
                    frac.trim_end_matches('0').len()
                } else {
                    let s = format!("{:.8}", x);
                    s.split('.')
                        .nth(1)
                        .unwrap_or("")
                        .trim_end_matches('0')
                        .len()
                }
            })
            .max()
            .unwrap_or(0)
    };
    let mut f = ElementFormat {
        scientific,
        precision,
        all_integers,
        width: 0,
    };
    f.width = values
        .iter()
        .map(|&x| format_element(x, &f).len())
        .max()
        .unwrap_or(1);
    f
}

fn format_element(x: f64, f: &ElementFormat) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f.scientific {
        let s = format!("{:.*e}", f.precision, x);
        let (m, e) = s.split_once('e').expect("exponent");
        let e: i32 = e.parse().expect("int exponent");
        let m = if f.precision == 0 {
            format!("{m}.")
        } else {
            m.to_string()
        };
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    } else if f.all_integers {
        format!("{x:.0}.")
    } else {
        // NumPy pads trailing digits with spaces, keeping each element's own digits.
        let s = format!("{:.8}", x);
        let (int, frac) = s.split_once('.').expect("point");
        let frac = frac.trim_end_matches('0');
        let frac = &frac[..frac.len().min(f.precision)];
        let shown = format!("{int}.{frac}");
        format!("{shown}{}", " ".repeat(f.precision - frac.len()))
    }
}

/// A tensor as NumPy prints it, then its shape, e.g. `[[1. 2.]\n [3. 4.]] (2, 2)`.
/// 0-d tensors print as a bare float; 1-D tensors that are not abbreviated
/// print without the shape (their length is visible). Lines wrap at NumPy's
/// 75 columns.
pub fn tensor_str<S: ndarray::Data<Elem = f64>>(t: &crate::tensor::Floats<S>) -> String {
    if t.ndim() == 0 {
        return float_repr(t[[]]);
    }
    let abbreviate = t.len() > THRESHOLD;
    let shown: Vec<f64> = if abbreviate {
        edge_values(&t.view())
    } else {
        t.iter().cloned().collect()
    };
    let f = choose_format(&shown);
    let word = |x: &f64| format!("{:>w$}", format_element(*x, &f), w = f.width);
    with_shape(t.view(), &word, abbreviate)
}

/// An Int tensor as NumPy prints one: every element right-aligned to the
/// widest shown, e.g. `[ 0  4 16]`.
pub fn int_tensor_str(t: &crate::tensor::IntTensor) -> String {
    if t.ndim() == 0 {
        return t[[]].to_string();
    }
    let abbreviate = t.len() > THRESHOLD;
    let shown: Vec<i64> = if abbreviate {
        edge_values(&t.view())
    } else {
        t.iter().cloned().collect()
    };
    let width = shown.iter().map(|x| x.to_string().len()).max().unwrap_or(1);
    let word = |x: &i64| format!("{x:>width$}");
    with_shape(t.view(), &word, abbreviate)
}

/// A Bool tensor as NumPy prints one: `[ True False]`.
pub fn bool_tensor_str(t: &crate::tensor::BoolTensor) -> String {
    if t.ndim() == 0 {
        return t[[]].to_string();
    }
    let word = |b: &bool| if *b { " True" } else { "False" }.to_string();
    with_shape(t.view(), &word, t.len() > THRESHOLD)
}

/// The array's text, followed by its shape where NumPy's would not show it.
fn with_shape<T>(t: ArrayViewD<T>, word: &dyn Fn(&T) -> String, abbreviate: bool) -> String {
    let mut out = if t.is_empty() {
        "[]".to_string()
    } else {
        format_array(&t, word, abbreviate, " ", LINE_WIDTH)
    };
    if t.ndim() >= 2 || abbreviate {
        out.push(' ');
        out.push_str(&shape_str(t.shape()));
    }
    out
}

/// NumPy's `linewidth`.
const LINE_WIDTH: usize = 75;

fn edge_values<T: Copy>(v: &ArrayViewD<T>) -> Vec<T> {
    if v.ndim() == 0 {
        return vec![v[[]]];
    }
    let n = v.shape()[0];
    let idx: Vec<usize> = if n > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS).chain(n - EDGE_ITEMS..n).collect()
    } else {
        (0..n).collect()
    };
    idx.into_iter()
        .flat_map(|i| edge_values(&v.index_axis(Axis(0), i)))
        .collect()
}

/// NumPy's `_formatArray` for a non-empty array of at least one axis: rows
/// of the last axis wrap before `width` columns, continuing under `hanging`;
/// outer axes put their parts on new lines (a blank line per extra axis).
fn format_array<T>(
    v: &ArrayViewD<T>,
    word: &dyn Fn(&T) -> String,
    abbreviate: bool,
    hanging: &str,
    width: usize,
) -> String {
    let n = v.shape()[0];
    let cut = abbreviate && n > 2 * EDGE_ITEMS;
    let shown: Vec<Option<usize>> = if cut {
        (0..EDGE_ITEMS)
            .map(Some)
            .chain([None])
            .chain((n - EDGE_ITEMS..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    let mut s = String::new();
    if v.ndim() == 1 {
        // Room for the closing bracket.
        let width = width - 1;
        let mut line = hanging.to_string();
        for (k, item) in shown.iter().enumerate() {
            let word = match item {
                Some(i) => word(&v[*i]),
                None => "...".to_string(),
            };
            // Wrap unless the line holds nothing yet.
            if line.len() + word.len() > width && line.len() > hanging.len() {
                s.push_str(line.trim_end());
                s.push('\n');
                line = hanging.to_string();
            }
            line.push_str(&word);
            if k + 1 < shown.len() {
                line.push(' ');
            }
        }
        s.push_str(&line);
    } else {
        let separator = "\n".repeat(v.ndim() - 1);
        let inner = format!("{hanging} ");
        for (k, item) in shown.iter().enumerate() {
            s.push_str(hanging);
            match item {
                Some(i) => s.push_str(&format_array(
                    &v.index_axis(Axis(0), *i),
                    word,
                    abbreviate,
                    &inner,
                    width - 1,
                )),
                None => s.push_str("..."),
            }
            if k + 1 < shown.len() {
                s.push_str(&separator);
            }
        }
    }
    format!("[{}]", &s[hanging.len()..])
}

/// Apply a Python format spec (`[[fill]align][sign][0][width][,][.precision][type]`).
pub fn apply_spec(v: &Value, spec: &str) -> Result<String, String> {
    match v {
        Value::Tensor(t) => {
            // Elementwise, NumPy-style brackets.
            let parts: Result<Vec<String>, String> = t
                .iter()
                .map(|&x| apply_spec(&Value::Float(x), spec))
                .collect();
            let parts = parts?;
            if t.ndim() <= 1 {
                return Ok(format!("[{}]", parts.join(" ")));
            }
            return Ok(format!("[{}] {}", parts.join(" "), shape_str(t.shape())));
        }
        Value::Tuple(items) | Value::List(items) => {
            let parts: Result<Vec<String>, String> =
                items.iter().map(|x| apply_spec(x, spec)).collect();
            let open_close = if matches!(v, Value::Tuple(_)) {
                ("(", ")")
            } else {
                ("[", "]")
            };
            return Ok(format!(
                "{}{}{}",
                open_close.0,
                parts?.join(", "),
                open_close.1
            ));
        }
        _ => {}
    }
    let p = parse_spec(spec)?;
    let body = match v {
        Value::Int(i) => format_int(*i, &p)?,
        Value::Float(x) => format_float(*x, &p)?,
        Value::Bool(b) if p.kind.is_none() => b.to_string(),
        Value::Str(s) => {
            if p.kind.is_some_and(|k| k != 's') {
                return Err(format!(
                    "format `{}` does not apply to a string",
                    p.kind.unwrap_or(' ')
                ));
            }
            match p.precision {
                Some(n) => s.chars().take(n).collect(),
                None => s.to_string(),
            }
        }
        other => {
            if p.kind.is_some() || p.precision.is_some() {
                return Err(format!(
                    "a format spec with a precision or type does not apply to {}",
                    other.describe()
                ));
            }
            display(other)
        }
    };
    let default_align = if v.is_number() { '>' } else { '<' };
    Ok(pad(&body, &p, default_align))
}

struct Spec {
    fill: char,
    align: Option<char>,
    sign: char,
    zero: bool,
    width: usize,
    comma: bool,
    precision: Option<usize>,
    kind: Option<char>,
}

fn parse_spec(spec: &str) -> Result<Spec, String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let mut s = Spec {
        fill: ' ',
        align: None,
        sign: '-',
        zero: false,
        width: 0,
        comma: false,
        precision: None,
        kind: None,
    };
    let is_align = |c: char| matches!(c, '<' | '>' | '^' | '=');
    if chars.len() >= 2 && is_align(chars[1]) {
        s.fill = chars[0];
        s.align = Some(chars[1]);
        i = 2;
    } else if !chars.is_empty() && is_align(chars[0]) {
        s.align = Some(chars[0]);
        i = 1;
    }
    if i < chars.len() && matches!(chars[i], '+' | '-' | ' ') {
        s.sign = chars[i];
        i += 1;
    }
    if i < chars.len() && chars[i] == '0' {
        s.zero = true;
        i += 1;
    }
    let start = i;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if i > start {
        s.width = chars[start..i]
            .iter()
            .collect::<String>()
            .parse()
            .map_err(|_| "width is too large".to_string())?;
    }
    if i < chars.len() && (chars[i] == ',' || chars[i] == '_') {
        s.comma = true;
        i += 1;
    }
    if i < chars.len() && chars[i] == '.' {
        i += 1;
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(format!("format spec `{spec}`: expected digits after `.`"));
        }
        let p: usize = chars[start..i]
            .iter()
            .collect::<String>()
            .parse()
            .map_err(|_| "precision is too large".to_string())?;
        if p > 100 {
            return Err(format!(
                "format spec `{spec}`: precision {p} is more than 100"
            ));
        }
        s.precision = Some(p);
    }
    if i < chars.len() {
        let k = chars[i];
        if !"eEfFgGd%s".contains(k) {
            return Err(format!("format spec `{spec}`: unknown type `{k}`"));
        }
        s.kind = Some(k);
        i += 1;
    }
    if i != chars.len() {
        return Err(format!("format spec `{spec}` is malformed"));
    }
    if s.width > 1000 {
        return Err(format!("format spec `{spec}`: width is more than 1000"));
    }
    Ok(s)
}

fn signed(body: String, negative: bool, sign: char) -> String {
    if negative {
        format!("-{body}")
    } else {
        match sign {
            '+' => format!("+{body}"),
            ' ' => format!(" {body}"),
            _ => body,
        }
    }
}

fn group_thousands(int_part: &str) -> String {
    let mut out = String::new();
    for (n, c) in int_part.chars().enumerate() {
        if n > 0 && (int_part.len() - n).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn format_int(i: i64, p: &Spec) -> Result<String, String> {
    match p.kind {
        None | Some('d') => {
            if p.precision.is_some() {
                return Err(
                    "an integer format cannot have a precision; use `.2f` for a float".into(),
                );
            }
            let digits = i.unsigned_abs().to_string();
            let digits = if p.comma {
                group_thousands(&digits)
            } else {
                digits
            };
            Ok(signed(digits, i < 0, p.sign))
        }
        Some(_) => format_float(i as f64, p),
    }
}

fn format_float(x: f64, p: &Spec) -> Result<String, String> {
    if !x.is_finite() {
        let s = if x.is_nan() { "nan" } else { "inf" };
        return Ok(signed(s.into(), x < 0.0, p.sign));
    }
    let neg = x.is_sign_negative() && x != 0.0;
    let a = x.abs();
    let body = match p.kind {
        Some('f') | Some('F') => format!("{:.*}", p.precision.unwrap_or(6), a),
        Some('%') => format!("{:.*}%", p.precision.unwrap_or(6), a * 100.0),
        Some('e') | Some('E') => {
            let s = sci(a, p.precision.unwrap_or(6));
            if p.kind == Some('E') {
                s.to_uppercase()
            } else {
                s
            }
        }
        Some('g') | Some('G') => general(a, p.precision.unwrap_or(6).max(1), false),
        Some('d') => return Err("format `d` needs an Int; use `.0f` for a float".into()),
        None => match p.precision {
            // Python: like `g`, but a fixed-point result keeps at least one decimal.
            Some(prec) => general(a, prec.max(1), true),
            None => float_repr(a),
        },
        Some(k) => return Err(format!("format `{k}` does not apply to a number")),
    };
    let body = if p.comma {
        let (int, rest) = body.split_at(
            body.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(body.len()),
        );
        format!("{}{rest}", group_thousands(int))
    } else {
        body
    };
    Ok(signed(body, neg, p.sign))
}

fn sci(a: f64, prec: usize) -> String {
    let s = format!("{:.*e}", prec, a);
    let (m, e) = s.split_once('e').expect("exponent");
    let e: i32 = e.parse().expect("int exponent");
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

/// Python's `g` presentation with `prec` significant digits.
fn general(a: f64, prec: usize, keep_point: bool) -> String {
    if a == 0.0 {
        return if keep_point { "0.0".into() } else { "0".into() };
    }
    let s = format!("{:.*e}", prec - 1, a);
    let exp: i32 = s.split_once('e').expect("exponent").1.parse().expect("int");
    if exp < -4 || exp >= prec as i32 {
        let m = s.split_once('e').expect("exponent").0;
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        let f = format!("{:.*}", decimals, a);
        let f = if f.contains('.') {
            f.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            f
        };
        if keep_point && !f.contains('.') {
            format!("{f}.0")
        } else {
            f
        }
    }
}

fn pad(body: &str, p: &Spec, default_align: char) -> String {
    let len = body.chars().count();
    if len >= p.width {
        return body.to_string();
    }
    let n = p.width - len;
    if p.zero && p.align.is_none() {
        let (sign, digits) = if body.starts_with(['-', '+', ' ']) {
            body.split_at(1)
        } else {
            ("", body)
        };
        return format!("{sign}{}{digits}", "0".repeat(n));
    }
    let fill = |k: usize| p.fill.to_string().repeat(k);
    match p.align.unwrap_or(default_align) {
        '<' => format!("{body}{}", fill(n)),
        '^' => format!("{}{body}{}", fill(n / 2), fill(n - n / 2)),
        _ => format!("{}{body}", fill(n)),
    }
}

/// Rows of cells under a header, each column right-aligned to its widest cell.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|j| {
            std::iter::once(header)
                .chain(rows.iter().map(Vec::as_slice))
                .map(|r| r.get(j).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn floats_print_like_python_repr() {
        for (x, s) in [
            (0.1, "0.1"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.5e20, "1.5e+20"),
            (1e16, "1e+16"),
            (123456789.0, "123456789.0"),
            (1.0 / 3.0, "0.3333333333333333"),
        ] {
            assert_eq!(float_repr(x), s);
        }
    }

    #[test]
    fn tensors_print_like_numpy() {
        assert_eq!(tensor_str(&array![1.0, 2.0, 3.0].into_dyn()), "[1. 2. 3.]");
        assert_eq!(
            tensor_str(&array![0.1, 0.123, 1.0].into_dyn()),
            "[0.1   0.123 1.   ]"
        );
        assert_eq!(
            tensor_str(&array![[1.0, 2.0], [3.0, -4.0]].into_dyn()),
            "[[ 1.  2.]\n [ 3. -4.]] (2, 2)"
        );
        assert_eq!(tensor_str(&array![1e-5, 1.0].into_dyn()), "[1.e-05 1.e+00]");
        let big = ndarray::Array1::from_shape_fn(2000, |i| i as f64).into_dyn();
        assert_eq!(
            tensor_str(&big),
            "[   0.    1.    2. ... 1997. 1998. 1999.] (2000,)"
        );
        // Rows wrap at 75 columns, continuing under their first element
        // (strings from NumPy 2's `str`).
        let sevenths = ndarray::Array2::from_shape_fn((2, 20), |(i, j)| (20 * i + j) as f64 / 7.0);
        assert_eq!(
            tensor_str(&sevenths.into_dyn()),
            "[[0.         0.14285714 0.28571429 0.42857143 0.57142857 0.71428571\n  \
             0.85714286 1.         1.14285714 1.28571429 1.42857143 1.57142857\n  \
             1.71428571 1.85714286 2.         2.14285714 2.28571429 2.42857143\n  \
             2.57142857 2.71428571]\n \
             [2.85714286 3.         3.14285714 3.28571429 3.42857143 3.57142857\n  \
             3.71428571 3.85714286 4.         4.14285714 4.28571429 4.42857143\n  \
             4.57142857 4.71428571 4.85714286 5.         5.14285714 5.28571429\n  \
             5.42857143 5.57142857]] (2, 20)"
        );
        let thirds =
            ndarray::Array3::from_shape_fn((2, 1, 2), |(i, _, k)| (2 * i + k) as f64 / 3.0);
        assert_eq!(
            tensor_str(&thirds.into_dyn()),
            "[[[0.         0.33333333]]\n\n [[0.66666667 1.        ]]] (2, 1, 2)"
        );
    }

    #[test]
    fn format_specs_follow_python() {
        let f = |x: f64, s: &str| apply_spec(&Value::Float(x), s).unwrap();
        assert_eq!(f(0.123456, ".3"), "0.123");
        assert_eq!(f(1234.5, ".3"), "1.23e+03");
        assert_eq!(f(2.0, ".3"), "2.0");
        assert_eq!(f(1.23456, ".2f"), "1.23");
        assert_eq!(f(0.000123, ".2e"), "1.23e-04");
        assert_eq!(f(1.23456, ">8.3f"), "   1.235");
        assert_eq!(f(-1.23456, "08.3f"), "-001.235");
        assert_eq!(f(0.5, ".1%"), "50.0%");
        assert_eq!(f(1e-7, "g"), "1e-07");
        assert_eq!(apply_spec(&Value::Int(1234567), ",d").unwrap(), "1,234,567");
        assert_eq!(apply_spec(&Value::Int(42), "5").unwrap(), "   42");
        assert_eq!(apply_spec(&Value::str("ab"), "<4").unwrap(), "ab  ");
        assert!(apply_spec(&Value::Float(1.0), ".3q").is_err());
        assert!(apply_spec(&Value::Int(1), ".2d").is_err());
    }
}

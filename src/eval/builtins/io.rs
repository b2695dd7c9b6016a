//! Files, printing, the metrics table and small conversions. Relative paths
//! are resolved against the running script's folder (the working directory
//! in the REPL), except that files a run writes land in its output folder
//! when it has one. Every read and write goes through the session's host
//! (`host::Host`), which writes whole files or nothing.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use ndarray::{ArrayD, IxDyn};

use super::{Args, Builtin};
use crate::diag::{Diag, Span};
use crate::eval::dtype::CastError;
use crate::eval::format;
use crate::eval::interp::Interp;
use crate::eval::value::{Tensor, Value};
use crate::format::{float_repr, shape_str};
use crate::outputs::Metric;
use crate::prim::Dtype;

type R = Result<Value, Diag>;

pub static BUILTINS: &[Builtin] = &[
    builtin!("print", "*values", "Print values separated by spaces; tensors print NumPy-style with their shape.", print),
    builtin!("log", "x=none, **metrics", "`log(x)`: elementwise natural logarithm. `log(name: value, ...)`: one row of the run's metrics table, printed aligned, and appended to `metrics.csv` and `metrics.jsonl` in the run's output folder when it has one.", log),
    builtin!("out", "dir=none", "The run's output folder: `out(\"runs/rfm\")` opens it (relative to the script's folder) unless `flx run --out DIR` chose one; `out()` is its path, or none. Metrics rows, `run.json`, plots and files saved with a relative path land there.", out),
    builtin!("progress", "xs, label=none", "`xs` (a range, list, tuple, record or tensor), for a `for` loop to show a progress bar over: `for t in progress(0..iters, label: \"sweep\")`. Like tqdm, but the bar appears only on a terminal and only once the loop has taken a second.", progress),
    builtin!("time", "", "Seconds since flx started (a monotonic clock): `let t0 = time()` ... `time() - t0`.", time),
    builtin!("assert", "cond, message=none", "Stop with an error unless `cond` is true.", assert),
    builtin!("str", "x", "The text `print` shows for a value.", |_, a| Ok(Value::str(&format::display(&a.vals[0])))),
    builtin!("int", "x", "Ints from a number or tensor (truncating toward zero; Bools are 0 and 1) or a string: `int(2.7) == 2`, `int(x > 0)`.", to_int),
    builtin!("float", "x", "Floats from a number or tensor (Bools are 0 and 1) or a string: `float(\"nan\")`, `float([1, 2])`.", to_float),
    builtin!("bool", "x", "Bools from a number or tensor (`x != 0`).", to_bool),
    builtin!("dtype", "x", "The element type of a number or tensor: `\"float\"`, `\"int\"` or `\"bool\"`.", dtype_of),
    builtin!("append", "xs, value", "A new list: `xs` with `value` added at the end.", append),
    builtin!("load_csv", "path, header=none, delimiter=\",\"", "Read a numeric CSV file into a tensor (one column or row gives a vector, as NumPy). `header:` true or false; by default a first row that is not numeric is taken as a header.", load_csv),
    builtin!("load_table", "path, delimiter=\",\"", "Read a CSV file with a header into a record of columns, one field per header name in order (pandas' `read_csv`): a column of Ints is an Int tensor, of numbers a Float tensor (empty cells `nan`), of `true`/`false` a Bool tensor, anything else a list of Strs. Reads every `metrics.csv` and `summary.csv` flx writes: `load_table(\"runs/grokking/metrics.csv\").test_acc`.", load_table),
    builtin!("save_csv", "path, x, header=none", "Write a vector or matrix as CSV (full precision); `header:` a list of column names.", save_csv),
    builtin!("load_npy", "path", "Read a NumPy `.npy` file (float64, float32 or integer) into a tensor.", load_npy),
    builtin!("save_npy", "path, x", "Write a tensor as a NumPy `.npy` file (float64).", save_npy),
];

fn print(interp: &mut Interp, a: &mut Args) -> R {
    let line = a
        .rest
        .iter()
        .map(|(v, _)| format::display(v))
        .collect::<Vec<_>>()
        .join(" ");
    write_out(interp, &line, a.call)?;
    Ok(Value::None)
}

fn write_out(interp: &mut Interp, line: &str, span: Span) -> Result<(), Diag> {
    interp
        .host
        .print(line)
        .map_err(|e| Diag::new("flx::io::stdout", format!("cannot write output: {e}")).at(span))
}

fn log(interp: &mut Interp, a: &mut Args) -> R {
    match (a.is_none(0), a.kwargs.is_empty()) {
        (false, true) => super::tensor::map(a, crate::prim::Unary::Log),
        (true, false) => {
            let mut row = Vec::with_capacity(a.kwargs.len());
            for (n, v, s) in &a.kwargs {
                let metric = match v {
                    Value::Int(i) => Metric::Int(*i),
                    Value::Float(f) => Metric::Float(*f),
                    Value::Str(s) => Metric::Str(s.to_string()),
                    Value::Bool(b) => Metric::Bool(*b),
                    other => {
                        return Err(Diag::new(
                            "flx::type::argument",
                            format!(
                                "a metric must be a number, a Bool or a Str, found {}",
                                other.describe()
                            ),
                        )
                        .at(*s)
                        .help("reduce tensors first, e.g. `mean(err)`"))
                    }
                };
                row.push((n.to_string(), metric));
            }
            print_row(interp, &row, a.call)?;
            if let Some(o) = interp.host.outputs() {
                o.log(&row).map_err(|e| {
                    Diag::new(
                        "flx::io::file",
                        format!("cannot write the metrics in {}: {e}", o.dir().display()),
                    )
                    .at(a.call)
                })?;
            }
            Ok(Value::None)
        }
        (true, true) => Err(Diag::new(
            "flx::call::missing_arg",
            "`log` needs a value, or named metrics",
        )
        .at(a.call)
        .help("`log(x)` is the natural logarithm; `log(step: t, loss: l)` records metrics")),
        (false, false) => Err(Diag::new(
            "flx::call::conflict",
            "`log` takes either one value or named metrics, not both",
        )
        .at(a.call)
        .help("`log(x)` is the natural logarithm; `log(step: t, loss: l)` records metrics")),
    }
}

/// A metrics row on the output, aligned under a header printed whenever the columns change.
fn print_row(interp: &mut Interp, row: &[(String, Metric)], span: Span) -> Result<(), Diag> {
    let names: Vec<String> = row.iter().map(|(n, _)| n.clone()).collect();
    let mut out = String::new();
    if interp.run.log.columns != names {
        interp.run.log.widths = names.iter().map(|n| n.len().max(10)).collect();
        let header: Vec<String> = names
            .iter()
            .zip(&interp.run.log.widths)
            .map(|(n, w)| format!("{n:>w$}"))
            .collect();
        interp.run.log.columns = names;
        out.push_str(&header.join("  "));
        out.push('\n');
    }
    let cells: Vec<String> = row
        .iter()
        .zip(&interp.run.log.widths)
        .map(|((_, m), w)| {
            let cell = match m {
                Metric::Int(i) => format::apply_spec(&Value::Int(*i), ".6g").expect("valid spec"),
                Metric::Float(f) => {
                    format::apply_spec(&Value::Float(*f), ".6g").expect("valid spec")
                }
                Metric::Bool(b) => b.to_string(),
                Metric::Str(s) => s.clone(),
            };
            format!("{cell:>w$}")
        })
        .collect();
    out.push_str(&cells.join("  "));
    write_out(interp, &out, span)
}

/// `out(dir)`: open the run's output folder, unless the command line chose one.
fn out(interp: &mut Interp, a: &mut Args) -> R {
    if !a.is_none(0) {
        let dir = resolve(interp, a, 0)?;
        let fixed = interp.run.outputs_from_command_line;
        match interp.host.outputs().map(|o| o.dir().to_path_buf()) {
            None => {
                if !interp.host.may_write() {
                    return Err(disabled(a, 0));
                }
                let info = interp.run.info.clone();
                interp
                    .host
                    .open_outputs(&dir, info)
                    .map_err(|e| io_error(a, 0, "create the output folder", &dir, e))?;
            }
            Some(open) if open == dir || fixed => {}
            Some(open) => {
                return Err(a
                    .error(
                        0,
                        "flx::io::out",
                        format!("this run already writes to {}", open.display()),
                    )
                    .help("a run has one output folder; call `out` once, before logging"))
            }
        }
    }
    Ok(interp
        .host
        .outputs()
        .map_or(Value::None, |o| Value::str(&o.dir().display().to_string())))
}

fn progress(_: &mut Interp, a: &mut Args) -> R {
    if crate::eval::interp::iteration_count(&a.vals[0]).is_none() {
        return Err(a.expected(0, "a range, list, tuple, record or tensor"));
    }
    let label = match &a.vals[1] {
        Value::None => None,
        Value::Str(s) => Some(s.clone()),
        _ => return Err(a.expected(1, "a Str")),
    };
    Ok(Value::Progress(Rc::new((a.vals[0].clone(), label))))
}

fn time(interp: &mut Interp, _: &mut Args) -> R {
    Ok(Value::Float(interp.host.elapsed().as_secs_f64()))
}

fn assert(_: &mut Interp, a: &mut Args) -> R {
    let ok = match &a.vals[0] {
        Value::Bool(b) => *b,
        _ => return Err(a.expected(0, "a Bool")),
    };
    if ok {
        return Ok(Value::None);
    }
    let msg = match &a.vals[1] {
        Value::None => "assertion failed".to_string(),
        v => format!("assertion failed: {}", format::display(v)),
    };
    Err(Diag::new("flx::assert", msg).at(a.spans[0]))
}

/// `int(x)`, `float(x)`, `bool(x)` of a number or tensor.
fn cast(a: &Args, to: Dtype) -> R {
    crate::eval::dtype::cast(&a.vals[0], to).map_err(|e| match e {
        CastError::NotFinite(x) => a.error(
            0,
            "flx::value::int",
            format!("cannot convert {} to Int", float_repr(x)),
        ),
        CastError::NotANumber => a.expected(0, "a number, a tensor or a string"),
    })
}

fn to_bool(_: &mut Interp, a: &mut Args) -> R {
    cast(a, Dtype::Bool)
}

fn dtype_of(_: &mut Interp, a: &mut Args) -> R {
    match a.vals[0].dtype() {
        Some(d) => Ok(Value::str(d.name())),
        None => Err(a.expected(0, "a number or a tensor")),
    }
}

fn to_int(_: &mut Interp, a: &mut Args) -> R {
    match &a.vals[0] {
        Value::Str(s) => s
            .trim()
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| a.error(0, "flx::value::int", format!("cannot read {s:?} as an Int"))),
        _ => cast(a, Dtype::Int),
    }
}

fn to_float(_: &mut Interp, a: &mut Args) -> R {
    match &a.vals[0] {
        Value::Str(s) => s.trim().parse::<f64>().map(Value::Float).map_err(|_| {
            a.error(
                0,
                "flx::value::float",
                format!("cannot read {s:?} as a Float"),
            )
        }),
        _ => cast(a, Dtype::Float),
    }
}

fn append(_: &mut Interp, a: &mut Args) -> R {
    match &a.vals[0] {
        Value::List(items) => {
            let mut v = items.to_vec();
            v.push(a.vals[1].clone());
            Ok(Value::list(v))
        }
        _ => Err(a.expected(0, "a List")),
    }
}

/// A path to write: relative to the run's output folder when it has one, else as `resolve`.
pub(super) fn write_path(interp: &mut Interp, a: &Args, i: usize) -> Result<PathBuf, Diag> {
    if !interp.host.may_write() {
        return Err(disabled(a, i));
    }
    let name = a.str(i)?;
    match interp.host.outputs() {
        Some(o) if Path::new(name.as_ref()).is_relative() => Ok(o.dir().join(name.as_ref())),
        _ => resolve(interp, a, i),
    }
}

pub(super) fn disabled(a: &Args, i: usize) -> Diag {
    a.error(
        i,
        "flx::io::disabled",
        "writing files is disabled in this session",
    )
}

/// A path argument, resolved against the script's folder (the working directory in the REPL).
fn resolve(interp: &Interp, a: &Args, i: usize) -> Result<PathBuf, Diag> {
    let p = a.str(i)?;
    let p = Path::new(p.as_ref());
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        interp.run.script_dir.join(p)
    })
}

/// The bytes of a file, through the host.
fn read(interp: &mut Interp, a: &Args, i: usize) -> Result<(PathBuf, Vec<u8>), Diag> {
    let path = resolve(interp, a, i)?;
    let bytes = interp
        .host
        .read(&path)
        .map_err(|e| io_error(a, i, "read", &path, e))?;
    Ok((path, bytes))
}

fn io_error(a: &Args, i: usize, what: &str, path: &Path, e: impl std::fmt::Display) -> Diag {
    Diag::new(
        "flx::io::file",
        format!("cannot {what} {}: {e}", path.display()),
    )
    .at(a.spans[i])
}

/// The text of the file argument `path` and the one-byte argument `delim`.
fn read_text(
    interp: &mut Interp,
    a: &Args,
    path: usize,
    delim: usize,
) -> Result<(PathBuf, String, u8), Diag> {
    let (file, bytes) = read(interp, a, path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| io_error(a, path, "read", &file, "stream did not contain valid UTF-8"))?;
    match a.str(delim)?.as_bytes() {
        [b] => Ok((file, text, *b)),
        _ => Err(a.error(
            delim,
            "flx::value::delimiter",
            "`delimiter` must be one character",
        )),
    }
}

/// Rows of `text` as they are (no header taken, ragged rows kept for the
/// caller's own diagnostic), fields trimmed.
fn csv_reader(text: &str, delim: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delim)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes())
}

fn load_csv(interp: &mut Interp, a: &mut Args) -> R {
    let (path, text, delim) = read_text(interp, a, 0, 2)?;
    let header = match &a.vals[1] {
        Value::None => None,
        Value::Bool(b) => Some(*b),
        _ => return Err(a.expected(1, "a Bool")),
    };
    let mut reader = csv_reader(&text, delim);
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut width = None;
    for (r, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            file_error(
                interp,
                &path,
                &text,
                e.position().map_or(1, |p| p.line() as usize),
                0,
                delim,
                &e.to_string(),
            )
        })?;
        let line = record.position().map_or(r + 1, |p| p.line() as usize);
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let parsed: Vec<Option<f64>> = record.iter().map(parse_number).collect();
        if r == 0 && header != Some(false) && parsed.iter().any(Option::is_none) {
            continue; // a header row
        }
        if header == Some(true) && r == 0 {
            continue;
        }
        let mut row = Vec::with_capacity(parsed.len());
        for (j, v) in parsed.into_iter().enumerate() {
            match v {
                Some(x) => row.push(x),
                None => {
                    let field = record.get(j).unwrap_or("");
                    let msg = if field.is_empty() {
                        "empty field".to_string()
                    } else {
                        format!("`{field}` is not a number")
                    };
                    return Err(file_error(interp, &path, &text, line, j, delim, &msg));
                }
            }
        }
        match width {
            None => width = Some(row.len()),
            Some(w) if w != row.len() => {
                return Err(file_error(
                    interp,
                    &path,
                    &text,
                    line,
                    0,
                    delim,
                    &format!("this row has {} fields, earlier rows have {w}", row.len()),
                ));
            }
            _ => {}
        }
        rows.push(row);
    }
    let w = width.unwrap_or(0);
    let n = rows.len();
    let data: Vec<f64> = rows.into_iter().flatten().collect();
    // Squeeze like NumPy's loadtxt: one column or one row gives a vector.
    let shape: Vec<usize> = if w == 1 || n == 1 {
        vec![n * w]
    } else {
        vec![n, w]
    };
    Ok(Value::tensor(
        ArrayD::from_shape_vec(IxDyn(&shape), data).expect("rectangular"),
    ))
}

fn load_table(interp: &mut Interp, a: &mut Args) -> R {
    let (path, text, delim) = read_text(interp, a, 0, 1)?;
    let mut reader = csv_reader(&text, delim);
    let mut names: Option<Vec<String>> = None;
    let mut cells: Vec<Vec<String>> = Vec::new(); // by column
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(1, |p| p.line() as usize);
            file_error(interp, &path, &text, line, 0, delim, &e.to_string())
        })?;
        let line = record.position().map_or(1, |p| p.line() as usize);
        let Some(names) = &names else {
            let header: Vec<String> = record.iter().map(str::to_string).collect();
            for (j, name) in header.iter().enumerate() {
                let msg = if name.is_empty() {
                    "a column without a name".to_string()
                } else if header[..j].contains(name) {
                    format!("a second column named `{name}`")
                } else {
                    continue;
                };
                return Err(file_error(interp, &path, &text, line, j, delim, &msg));
            }
            cells = vec![Vec::new(); header.len()];
            names = Some(header);
            continue;
        };
        if record.len() == 1 && record[0].is_empty() {
            continue; // a blank line
        }
        if record.len() != names.len() {
            let msg = format!(
                "this row has {} fields, the header has {}",
                record.len(),
                names.len()
            );
            return Err(file_error(interp, &path, &text, line, 0, delim, &msg));
        }
        for (column, field) in cells.iter_mut().zip(record.iter()) {
            column.push(field.to_string());
        }
    }
    let Some(names) = names else {
        return Err(io_error(
            a,
            0,
            "read",
            &path,
            "the file is empty: a table needs a header row",
        ));
    };
    let fields = names
        .into_iter()
        .zip(cells)
        .map(|(name, column)| (name, table_column(column)));
    Ok(Value::record(fields))
}

/// A column as pandas would type it: Ints, then numbers (empty cells nan),
/// then Bools, else the text itself.
fn table_column(cells: Vec<String>) -> Value {
    let all = |ok: &dyn Fn(&str) -> bool| cells.iter().all(|c| ok(c));
    if all(&|c| c.parse::<i64>().is_ok()) {
        let ints = cells.iter().map(|c| c.parse::<i64>().expect("checked"));
        return Value::from(ndarray::Array1::from_iter(ints));
    }
    if all(&|c| c.is_empty() || parse_number(c).is_some()) {
        let floats = cells.iter().map(|c| parse_number(c).unwrap_or(f64::NAN));
        return Value::from(ndarray::Array1::from_iter(floats));
    }
    if all(&|c| c == "true" || c == "false") {
        return Value::from(ndarray::Array1::from_iter(
            cells.iter().map(|c| c == "true"),
        ));
    }
    Value::list(cells.iter().map(|c| Value::str(c)))
}

fn parse_number(field: &str) -> Option<f64> {
    match field.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        f => f.parse::<f64>().ok(),
    }
}

/// A diagnostic inside a data file: the file's text becomes a source so the
/// report shows the offending line with its line and column.
fn file_error(
    interp: &mut Interp,
    path: &Path,
    text: &str,
    line: usize,
    field: usize,
    delim: u8,
    msg: &str,
) -> Diag {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let line_text = text[line_start.min(text.len())..]
        .split('\n')
        .next()
        .unwrap_or("");
    let mut offset = 0;
    for (k, part) in line_text.split(delim as char).enumerate() {
        if k == field {
            let lead = part.len() - part.trim_start().len();
            let len = part.trim().len().max(1);
            offset = line_start + offset + lead;
            let file = interp.linker.sources.add(path.display().to_string(), text);
            return Diag::new(
                "flx::io::malformed",
                format!("malformed data in {}", file_name(path)),
            )
            .at(Span::new(file, offset, (offset + len).min(text.len())))
            .label(msg.to_string());
        }
        offset += part.len() + 1;
    }
    let file = interp.linker.sources.add(path.display().to_string(), text);
    Diag::new(
        "flx::io::malformed",
        format!("malformed data in {}", file_name(path)),
    )
    .at(Span::new(file, line_start, line_start + line_text.len()))
    .label(msg.to_string())
}

/// The file's own name: the snippet's header already shows the whole path,
/// and a long path would wrap the message.
fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn save_csv(interp: &mut Interp, a: &mut Args) -> R {
    let path = write_path(interp, a, 0)?;
    let t: Rc<Tensor> = a.tensor(1)?;
    let m = match t.ndim() {
        1 => t
            .view()
            .into_dimensionality::<ndarray::Ix1>()
            .expect("1-d")
            .insert_axis(ndarray::Axis(1))
            .to_owned(),
        2 => t
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .expect("2-d")
            .to_owned(),
        _ => {
            return Err(a.error(
                1,
                "flx::shape::csv",
                format!(
                    "CSV holds a vector or a matrix, found shape {}",
                    shape_str(t.shape())
                ),
            ))
        }
    };
    let header: Option<Vec<String>> = match &a.vals[2] {
        Value::None => None,
        Value::List(items) | Value::Tuple(items) => {
            let names: Vec<String> = items.iter().map(format::display).collect();
            if names.len() != m.ncols() {
                return Err(a.error(
                    2,
                    "flx::shape::csv",
                    format!("{} header names for {} columns", names.len(), m.ncols()),
                ));
            }
            Some(names)
        }
        _ => return Err(a.expected(2, "a list of column names")),
    };
    let bytes = (|| {
        let mut cw = csv::Writer::from_writer(Vec::new());
        if let Some(h) = &header {
            cw.write_record(h)?;
        }
        for row in m.rows() {
            cw.write_record(row.iter().map(|&x| float_repr(x)))?;
        }
        cw.into_inner().map_err(|e| e.into_error().into())
    })()
    .map_err(|e: csv::Error| io_error(a, 0, "write", &path, e))?;
    interp
        .host
        .write(&path, &bytes)
        .map_err(|e| io_error(a, 0, "write", &path, e))?;
    Ok(Value::None)
}

fn load_npy(interp: &mut Interp, a: &mut Args) -> R {
    use ndarray_npy::ReadNpyExt;
    let (path, bytes) = read(interp, a, 0)?;
    let t: Tensor = match ArrayD::<f64>::read_npy(bytes.as_slice()) {
        Ok(t) => t.into(),
        Err(first) => {
            if let Ok(t) = ArrayD::<f32>::read_npy(bytes.as_slice()) {
                t.mapv(f64::from).into()
            } else if let Ok(t) = ArrayD::<i64>::read_npy(bytes.as_slice()) {
                t.mapv(|x| x as f64).into()
            } else if let Ok(t) = ArrayD::<i32>::read_npy(bytes.as_slice()) {
                t.mapv(f64::from).into()
            } else {
                return Err(io_error(a, 0, "read", &path, first));
            }
        }
    };
    Ok(Value::tensor(t))
}

fn save_npy(interp: &mut Interp, a: &mut Args) -> R {
    use ndarray_npy::WriteNpyExt;
    let path = write_path(interp, a, 0)?;
    let t = a.tensor(1)?;
    let mut bytes = Vec::new();
    t.as_standard_layout()
        .write_npy(&mut bytes)
        .map_err(|e| io_error(a, 0, "write", &path, e))?;
    interp
        .host
        .write(&path, &bytes)
        .map_err(|e| io_error(a, 0, "write", &path, e))?;
    Ok(Value::None)
}

//! `plot.line`, `plot.scatter`, `plot.heatmap`, `plot.hist`: values to the
//! plain data of `crate::plot`, and the file they land in.

use super::{Args, Builtin};
use crate::diag::Diag;
use crate::eval::interp::Interp;
use crate::eval::value::Value;
use crate::format::shape_str;
use crate::plot::{Chart, Labels, RenderError, Series};

type R = Result<Value, Diag>;

pub static BUILTINS: &[Builtin] = &[
    builtin!("plot", "", "Figures, written as SVG or PNG by the file's extension: `plot.line`, `plot.scatter`, `plot.heatmap`, `plot.hist`. Each takes `file:`, `title:`, `xlabel:` and `ylabel:` and returns the path it wrote. A relative `file` lands in the run's output folder when it has one (`--out`, `out(dir)`); without `file:` the figure goes to a new SVG file in the system's temporary folder (handy in the REPL, which prints the path).", group),
    builtin!("plot.line", "x, y=none, file=none, title=none, xlabel=none, ylabel=none, logx=false, logy=false", "Lines of `y` against `x`; `plot.line(y)` plots against 0, 1, 2, .... `y` is a vector, a matrix (a line per column) or a record of vectors (a line per field, named in the legend): `plot.line(steps, {train: a, test: b}, logy: true)`. A NaN breaks a line.", line),
    builtin!("plot.scatter", "x, y, file=none, title=none, xlabel=none, ylabel=none, logx=false, logy=false", "Points of `y` against `x`; `y` as in `plot.line`.", scatter),
    builtin!("plot.heatmap", "M, file=none, title=none, xlabel=none, ylabel=none", "A matrix as colours (viridis, with a colour bar), row 0 at the top, as matplotlib's `imshow`. A matrix over 256 on a side is drawn as the means of blocks.", heatmap),
    builtin!("plot.hist", "x, bins=30, file=none, title=none, xlabel=none, ylabel=\"count\"", "A histogram of the values of `x` in `bins` equal bins (as NumPy's); `x` a tensor or a record of them (overlaid, named in the legend).", hist),
];

/// The members of the group `plot`, for `plot` on its own.
fn group(_: &mut Interp, a: &mut Args) -> R {
    Err(Diag::new(
        "flx::call::group",
        "`plot` is a group of builtins, not a function",
    )
    .at(a.call)
    .help("call one of plot.line, plot.scatter, plot.heatmap, plot.hist"))
}

fn line(interp: &mut Interp, a: &mut Args) -> R {
    xy(interp, a, false)
}

fn scatter(interp: &mut Interp, a: &mut Args) -> R {
    xy(interp, a, true)
}

fn xy(interp: &mut Interp, a: &mut Args, points: bool) -> R {
    let (x, series) = if a.is_none(1) {
        let series = series(a, 0)?;
        let n = series[0].y.len();
        if let Some(s) = series.iter().find(|s| s.y.len() != n) {
            return Err(a.error(
                0,
                "flx::shape::mismatch",
                format!("series of {n} and of {} values share one x axis", s.y.len()),
            ));
        }
        ((0..n).map(|i| i as f64).collect(), series)
    } else {
        let x = vector(a, 0)?;
        let series = series(a, 1)?;
        if let Some(s) = series.iter().find(|s| s.y.len() != x.len()) {
            return Err(a.shapes_error(
                0,
                1,
                "flx::shape::mismatch",
                format!("{} x values but {} y values", x.len(), s.y.len()),
            ));
        }
        (x, series)
    };
    let chart = Chart::Xy {
        x,
        series,
        points,
        logx: a.bool(6)?,
        logy: a.bool(7)?,
    };
    save(interp, a, 2, chart)
}

fn heatmap(interp: &mut Interp, a: &mut Args) -> R {
    let m = a.matrix(0)?;
    let z = m
        .view()
        .into_dimensionality::<ndarray::Ix2>()
        .expect("a matrix")
        .to_owned();
    save(interp, a, 1, Chart::Heatmap { z })
}

fn hist(interp: &mut Interp, a: &mut Args) -> R {
    let bins = a.count(1)?;
    if bins == 0 || bins > 10_000 {
        return Err(a.error(
            1,
            "flx::value::bins",
            format!("`bins` must be from 1 to 10000, found {bins}"),
        ));
    }
    let series = match &a.vals[0] {
        Value::Record(_) => series(a, 0)?,
        _ => vec![Series {
            name: None,
            y: a.tensor(0)?.iter().copied().collect(),
        }],
    };
    save(interp, a, 2, Chart::Hist { series, bins })
}

/// A vector argument (a list of numbers is one too).
fn vector(a: &Args, i: usize) -> Result<Vec<f64>, Diag> {
    vector_of(a, &a.vals[i], i, None)
}

/// `v`, argument `i` or the field `field` of it, as a vector.
fn vector_of(a: &Args, v: &Value, i: usize, field: Option<&str>) -> Result<Vec<f64>, Diag> {
    let what = field.map_or(String::new(), |f| format!("field `{f}`: "));
    let t = super::array_like(v, a.spans[i]).ok_or_else(|| {
        a.error(
            i,
            "flx::type::argument",
            format!(
                "{what}`{}` needs a vector here, found {}",
                a.name,
                v.describe()
            ),
        )
    })?;
    if t.ndim() != 1 {
        return Err(a
            .error(
                i,
                "flx::shape::not_vector",
                format!(
                    "{what}`{}` needs a vector here, found shape {}",
                    a.name,
                    shape_str(t.shape())
                ),
            )
            .label(format!("shape {}", shape_str(t.shape()))));
    }
    Ok(t.iter().copied().collect())
}

/// Series from a vector, a matrix (one per column) or a record of vectors (named).
fn series(a: &Args, i: usize) -> Result<Vec<Series>, Diag> {
    let out = match &a.vals[i] {
        Value::Record(r) => r
            .fields
            .iter()
            .map(|(name, v)| {
                Ok(Series {
                    name: Some(name.to_string()),
                    y: vector_of(a, v, i, Some(name))?,
                })
            })
            .collect::<Result<Vec<_>, Diag>>()?,
        _ => {
            let t = a.tensor(i)?;
            match t.ndim() {
                1 => vec![Series {
                    name: None,
                    y: t.iter().copied().collect(),
                }],
                2 => t
                    .view()
                    .into_dimensionality::<ndarray::Ix2>()
                    .expect("a matrix")
                    .columns()
                    .into_iter()
                    .map(|c| Series {
                        name: None,
                        y: c.to_vec(),
                    })
                    .collect(),
                _ => {
                    return Err(a.expected(i, "a vector, a matrix or a record of vectors"));
                }
            }
        }
    };
    if out.is_empty() || out.iter().all(|s| s.y.is_empty()) {
        return Err(a.error(i, "flx::value::empty", "nothing to plot"));
    }
    Ok(out)
}

/// Where the figure goes: `file:` (through the run's output folder), or a new temporary file.
fn save(interp: &mut Interp, a: &Args, file: usize, chart: Chart) -> R {
    let text = |i: usize| -> Result<Option<String>, Diag> {
        match &a.vals[i] {
            Value::None => Ok(None),
            Value::Str(s) => Ok(Some(s.to_string())),
            _ => Err(a.expected(i, "a Str")),
        }
    };
    let labels = Labels {
        title: text(file + 1)?,
        xlabel: text(file + 2)?,
        ylabel: text(file + 3)?,
    };
    let name = text(file)?;
    let path = match &name {
        None if !interp.host.may_write() => return Err(super::io::disabled(a, file)),
        None => interp.host.temporary_file("svg"),
        Some(_) => super::io::write_path(interp, a, file)?,
    };
    let bytes = crate::plot::render(&path, &labels, &chart).map_err(|e| match e {
        RenderError::Format => a
            .error(
                file,
                "flx::plot::format",
                format!("cannot tell the format of \"{}\"", name.unwrap_or_default()),
            )
            .help("a figure is written as SVG or PNG: end the file name in .svg or .png"),
        RenderError::Figure(msg) => {
            Diag::new("flx::plot", format!("cannot draw this figure: {msg}")).at(a.call)
        }
    })?;
    interp.host.write(&path, &bytes).map_err(|e| {
        a.error(
            file,
            "flx::io::file",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    interp.host.figure(&path, &bytes);
    Ok(Value::str(&path.display().to_string()))
}

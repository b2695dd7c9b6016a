//! Figures as the bytes of SVG or PNG files (chosen by the file's extension), drawn by
//! plotters with an embedded DejaVu Sans, so no system font library is
//! needed. Knows nothing of values: the builtins in `eval::builtins::plot`
//! turn tensors and records into the plain data here, and the host writes
//! the bytes. Does no I/O.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use ndarray::ArrayView2;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Pixels of a figure (and SVG user units).
const SIZE: (u32, u32) = (800, 560);
/// A heatmap larger than this on a side is drawn as averages of blocks.
pub const HEATMAP_MAX_CELLS: usize = 256;

/// Matplotlib's default colour cycle (tab10), so figures look familiar.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Titles and axes of a figure.
#[derive(Default)]
pub struct Labels {
    pub title: Option<String>,
    pub xlabel: Option<String>,
    pub ylabel: Option<String>,
}

/// One named (legend) or unnamed series of y values.
pub struct Series {
    pub name: Option<String>,
    pub y: Vec<f64>,
}

pub enum Chart {
    /// Series over shared x values; `points` draws markers instead of lines.
    Xy {
        x: Vec<f64>,
        series: Vec<Series>,
        points: bool,
        logx: bool,
        logy: bool,
    },
    /// Counts of each series' values in `bins` equal bins over the range of all of them.
    Hist { series: Vec<Series>, bins: usize },
    /// A matrix, row 0 at the top, with a colour bar (viridis).
    Heatmap { z: ndarray::Array2<f64> },
}

#[derive(Debug)]
pub enum RenderError {
    /// The file name ends in neither `.svg` nor `.png`.
    Format,
    /// The data cannot be drawn (nothing finite, say).
    Figure(String),
}

/// Draw `chart` as the bytes of an SVG or PNG file, by `path`'s extension
/// (the caller writes them).
pub fn render(path: &Path, labels: &Labels, chart: &Chart) -> Result<Vec<u8>, RenderError> {
    register_font();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let bytes = match ext.as_deref() {
        Some("svg") => {
            let mut text = String::new();
            draw(
                SVGBackend::with_string(&mut text, SIZE).into_drawing_area(),
                labels,
                chart,
            )
            .map_err(RenderError::Figure)?;
            text.into_bytes()
        }
        Some("png") => {
            let (w, h) = SIZE;
            let mut rgb = vec![0u8; (w * h * 3) as usize];
            draw(
                BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(),
                labels,
                chart,
            )
            .map_err(RenderError::Figure)?;
            encode_png(&rgb, w, h).map_err(|e| RenderError::Figure(e.to_string()))?
        }
        _ => return Err(RenderError::Format),
    };
    Ok(bytes)
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is valid: registering it cannot fail.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(rgb)?;
    Ok(out)
}

type Area<DB> = DrawingArea<DB, Shift>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing failed: {e:?}")
}

fn draw<DB: DrawingBackend>(root: Area<DB>, labels: &Labels, chart: &Chart) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    match chart {
        Chart::Xy {
            x,
            series,
            points,
            logx,
            logy,
        } => {
            let xs = axis_range(extent(x.iter().copied(), *logx, "x value")?, *logx, 0.05);
            let ys = series.iter().flat_map(|s| s.y.iter().copied());
            let ys = axis_range(extent(ys, *logy, "y value")?, *logy, 0.05);
            let corner = legend_corner(x, series, (&xs, *logx), (&ys, *logy));
            let lines = Lines {
                labels,
                x,
                series,
                points: *points,
                corner,
            };
            let draw = |xr, yr| xy(&root, &lines, xr, yr);
            match (*logx, *logy) {
                (false, false) => draw(Axis::Linear(xs), Axis::Linear(ys)),
                (true, false) => draw(Axis::Log(xs), Axis::Linear(ys)),
                (false, true) => draw(Axis::Linear(xs), Axis::Log(ys)),
                (true, true) => draw(Axis::Log(xs), Axis::Log(ys)),
            }?;
        }
        Chart::Hist { series, bins } => hist(&root, labels, series, *bins)?,
        Chart::Heatmap { z } => heatmap(&root, labels, z.view())?,
    }
    root.present().map_err(err)
}

/// Values an axis can carry: finite and within ±`LIMIT` (beyond it, the
/// arithmetic of ticks overflows); on a log axis, from 1/`LOG_LIMIT` to
/// `LOG_LIMIT` (plotters' log ticks hang below about 1e-300).
const LIMIT: f64 = 1e300;
const LOG_LIMIT: f64 = 1e290;

/// Whether a value is drawn: finite, and positive on a log axis (matplotlib
/// leaves the others out the same way).
fn shown(v: f64, log: bool) -> bool {
    v.is_finite() && (!log || v > 0.0)
}

/// The smallest and largest of the values drawn, or what is wrong.
fn extent(values: impl Iterator<Item = f64>, log: bool, what: &str) -> Result<(f64, f64), String> {
    let (lo, hi) = values
        .filter(|&v| shown(v, log))
        .fold(None, |acc: Option<(f64, f64)>, v| {
            Some(acc.map_or((v, v), |(a, b)| (a.min(v), b.max(v))))
        })
        .ok_or_else(|| {
            let kind = if log { "positive finite" } else { "finite" };
            format!("no {kind} {what} to draw")
        })?;
    let fits = if log {
        lo >= 1.0 / LOG_LIMIT && hi <= LOG_LIMIT
    } else {
        lo >= -LIMIT && hi <= LIMIT
    };
    if !fits {
        return Err(format!(
            "{what}s beyond 1e300 in size (1e±290 on a log axis) cannot be drawn"
        ));
    }
    Ok((lo, hi))
}

/// An axis over lo..=hi: padded by `pad` of the span (in logs on a log axis),
/// with room around values that are equal or nearly so.
fn axis_range((lo, hi): (f64, f64), log: bool, pad: f64) -> Range<f64> {
    if log {
        let (a, b) = (lo.ln(), hi.ln());
        let room = if b - a < 1e-9 {
            std::f64::consts::LN_2
        } else {
            (b - a) * pad
        };
        let edge = LOG_LIMIT.ln() + 10.0;
        return (a - room).max(-edge).exp()..(b + room).min(edge).exp();
    }
    let size = lo.abs().max(hi.abs());
    // Tick arithmetic needs a span well above the smallest doubles.
    if hi - lo <= size * 1e-12 || hi - lo < 1e-200 {
        let room = if size > 1e-200 { size * 0.5 } else { 1.0 };
        return lo - room..hi + room;
    }
    lo - (hi - lo) * pad..hi + (hi - lo) * pad
}

/// A linear or logarithmic axis over a range, so one generic function draws all four kinds.
enum Axis {
    Linear(Range<f64>),
    Log(Range<f64>),
}

/// The corner of the plot whose legend-sized box covers the fewest points
/// (matplotlib's `loc="best"`, over the four corners).
fn legend_corner(
    x: &[f64],
    series: &[Series],
    (xs, logx): (&Range<f64>, bool),
    (ys, logy): (&Range<f64>, bool),
) -> SeriesLabelPosition {
    let unit = |v: f64, r: &Range<f64>, log: bool| {
        if log {
            (v.ln() - r.start.ln()) / (r.end.ln() - r.start.ln())
        } else {
            (v - r.start) / (r.end - r.start)
        }
    };
    let (w, h) = (0.3, 0.06 * series.len() as f64 + 0.06);
    let corners = [
        (SeriesLabelPosition::UpperRight, 1.0 - w, 1.0 - h),
        (SeriesLabelPosition::UpperLeft, 0.0, 1.0 - h),
        (SeriesLabelPosition::LowerRight, 1.0 - w, 0.0),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
    ];
    let covered = |&(_, x0, y0): &(SeriesLabelPosition, f64, f64)| {
        series
            .iter()
            .flat_map(|s| x.iter().zip(&s.y))
            .filter(|(&a, &b)| {
                let (u, v) = (unit(a, xs, logx), unit(b, ys, logy));
                (x0..=x0 + w).contains(&u) && (y0..=y0 + h).contains(&v)
            })
            .count()
    };
    let best = corners
        .iter()
        .min_by_key(|c| covered(c))
        .expect("four corners");
    best.0.clone()
}

/// What a line or scatter chart draws, whatever its axes.
struct Lines<'a> {
    labels: &'a Labels,
    x: &'a [f64],
    series: &'a [Series],
    points: bool,
    corner: SeriesLabelPosition,
}

fn xy<DB: DrawingBackend>(
    root: &Area<DB>,
    lines: &Lines,
    xr: Axis,
    yr: Axis,
) -> Result<(), String> {
    fn build<DB: DrawingBackend, X, Y>(
        root: &Area<DB>,
        lines: &Lines,
        xr: X,
        yr: Y,
        log: (bool, bool),
    ) -> Result<(), String>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let Lines {
            labels,
            x,
            series,
            points,
            ref corner,
        } = *lines;
        let mut chart = builder(root, labels)
            .build_cartesian_2d(xr, yr)
            .map_err(err)?;
        mesh(&mut chart, labels)?;
        for (k, s) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let pts: Vec<Option<(f64, f64)>> = x
                .iter()
                .zip(&s.y)
                .map(|(&a, &b)| (shown(a, log.0) && shown(b, log.1)).then_some((a, b)))
                .collect();
            let anno = if points {
                chart
                    .draw_series(
                        pts.iter()
                            .flatten()
                            .map(|&p| Circle::new(p, 3, color.filled())),
                    )
                    .map_err(err)?
            } else {
                // A missing point (NaN, or not positive on a log axis) breaks the line.
                let runs: Vec<Vec<(f64, f64)>> = pts
                    .split(Option::is_none)
                    .filter(|r| !r.is_empty())
                    .map(|r| r.iter().flatten().copied().collect())
                    .collect();
                chart
                    .draw_series(
                        runs.into_iter()
                            .map(|r| PathElement::new(r, color.stroke_width(2))),
                    )
                    .map_err(err)?
            };
            if let Some(name) = &s.name {
                anno.label(name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            }
        }
        legend(&mut chart, series, corner.clone())
    }
    let log = (matches!(xr, Axis::Log(_)), matches!(yr, Axis::Log(_)));
    match (xr, yr) {
        (Axis::Linear(a), Axis::Linear(b)) => build(root, lines, a, b, log),
        (Axis::Log(a), Axis::Linear(b)) => build(root, lines, a.log_scale(), b, log),
        (Axis::Linear(a), Axis::Log(b)) => build(root, lines, a, b.log_scale(), log),
        (Axis::Log(a), Axis::Log(b)) => build(root, lines, a.log_scale(), b.log_scale(), log),
    }
}

fn builder<'a, 'b, DB: DrawingBackend>(
    root: &'a Area<DB>,
    labels: &Labels,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(root);
    b.margin(16).x_label_area_size(48).y_label_area_size(72);
    if let Some(t) = &labels.title {
        b.caption(t, ("sans-serif", 22));
    }
    b
}

fn mesh<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    labels: &Labels,
) -> Result<(), String>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut m = chart.configure_mesh();
    m.label_style(("sans-serif", 14))
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v));
    if let Some(l) = &labels.xlabel {
        m.x_desc(l);
    }
    if let Some(l) = &labels.ylabel {
        m.y_desc(l);
    }
    m.axis_desc_style(("sans-serif", 16)).draw().map_err(err)
}

/// A tick label: at most six significant digits, no trailing zeros, no "-0",
/// powers of ten for very small or large numbers.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    if !(1e-4..1e6).contains(&a) {
        let s = format!("{v:.5e}");
        let (mantissa, exp) = s.split_once('e').expect("an exponent");
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exp}");
    }
    let digits = (5 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn legend<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    series: &[Series],
    corner: SeriesLabelPosition,
) -> Result<(), String>
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
{
    if series.iter().all(|s| s.name.is_none()) {
        return Ok(());
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .position(corner)
        .draw()
        .map_err(err)
}

fn hist<DB: DrawingBackend>(
    root: &Area<DB>,
    labels: &Labels,
    series: &[Series],
    bins: usize,
) -> Result<(), String> {
    let values = series.iter().flat_map(|s| s.y.iter().copied());
    let Range { start: lo, end: hi } = axis_range(extent(values, false, "value")?, false, 0.0);
    let width = (hi - lo) / bins as f64;
    // NumPy's bins: half-open, the last one closed.
    let counts: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            let mut c = vec![0.0; bins];
            for v in s.y.iter().filter(|v| v.is_finite()) {
                let b = (((v - lo) / width) as usize).min(bins - 1);
                c[b] += 1.0;
            }
            c
        })
        .collect();
    let top = counts.iter().flatten().fold(0.0f64, |a, &b| a.max(b)) * 1.05;
    let mut chart = builder(root, labels)
        .build_cartesian_2d(lo..hi, 0.0..top.max(1.0))
        .map_err(err)?;
    mesh(&mut chart, labels)?;
    let alpha = if series.len() > 1 { 0.5 } else { 0.85 };
    for (k, (s, c)) in series.iter().zip(&counts).enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let bars = c.iter().enumerate().map(|(b, &n)| {
            let x0 = lo + b as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, n)], color.mix(alpha).filled())
        });
        let anno = chart.draw_series(bars).map_err(err)?;
        if let Some(name) = &s.name {
            anno.label(name).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.mix(alpha).filled())
            });
        }
    }
    legend(&mut chart, series, SeriesLabelPosition::UpperRight)
}

fn heatmap<DB: DrawingBackend>(
    root: &Area<DB>,
    labels: &Labels,
    z: ArrayView2<f64>,
) -> Result<(), String> {
    let (rows, cols) = z.dim();
    if rows == 0 || cols == 0 {
        return Err("an empty matrix has nothing to draw".into());
    }
    let (cells, step) = blocks(z);
    let Range { start: lo, end: hi } =
        axis_range(extent(cells.iter().copied(), false, "value")?, false, 0.0);
    let (w, _) = root.dim_in_pixel();
    let (main, bar) = root.split_horizontally(w.saturating_sub(110));
    let mut chart = builder(&main, labels)
        .build_cartesian_2d(0.0..cols as f64, rows as f64..0.0)
        .map_err(err)?;
    mesh(&mut chart, labels)?;
    let (h, v) = (step.0 as f64, step.1 as f64);
    chart
        .draw_series(cells.indexed_iter().map(|((i, j), &value)| {
            let (y0, x0) = (i as f64 * h, j as f64 * v);
            let color = if value.is_finite() {
                ViridisRGB::get_color_normalized(value, lo, hi)
            } else {
                RGBColor(255, 255, 255)
            };
            Rectangle::new(
                [
                    (x0, y0),
                    ((x0 + v).min(cols as f64), (y0 + h).min(rows as f64)),
                ],
                color.filled(),
            )
        }))
        .map_err(err)?;
    // The colour bar: the scale's range bottom to top.
    let mut scale = ChartBuilder::on(&bar)
        .margin_top(if labels.title.is_some() { 56 } else { 16 })
        .margin_bottom(64)
        .margin_left(8)
        .right_y_label_area_size(72)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(err)?;
    scale
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .disable_y_mesh()
        .label_style(("sans-serif", 13))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(err)?;
    let steps = 128;
    scale
        .draw_series((0..steps).map(|k| {
            let a = lo + (hi - lo) * k as f64 / steps as f64;
            let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
            Rectangle::new(
                [(0.0, a), (1.0, b)],
                ViridisRGB::get_color_normalized((a + b) / 2.0, lo, hi).filled(),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// The matrix as at most `HEATMAP_MAX_CELLS` cells a side, each the mean of
/// the finite entries of its block (NaN when it has none), with the block's
/// height and width.
fn blocks(z: ArrayView2<f64>) -> (ndarray::Array2<f64>, (usize, usize)) {
    let (rows, cols) = z.dim();
    let step = (
        rows.div_ceil(HEATMAP_MAX_CELLS),
        cols.div_ceil(HEATMAP_MAX_CELLS),
    );
    if step == (1, 1) {
        return (z.to_owned(), step);
    }
    let shape = (rows.div_ceil(step.0), cols.div_ceil(step.1));
    let cells = ndarray::Array2::from_shape_fn(shape, |(i, j)| {
        let block = z.slice(ndarray::s![
            i * step.0..((i + 1) * step.0).min(rows),
            j * step.1..((j + 1) * step.1).min(cols)
        ]);
        let (sum, n) = block
            .iter()
            .filter(|v| v.is_finite())
            .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        if n == 0 {
            f64::NAN
        } else {
            sum / n as f64
        }
    });
    (cells, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of figure over every pair of awkward values (and each pair
    /// in three rows for a heatmap) draws or says why, without hanging or
    /// panicking.
    #[test]
    fn awkward_values_draw_or_say_why() {
        let nasty = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            5e-324,
            1e-320,
            1e-300,
            1e300,
            -1e300,
            1e301,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.0 + 1e-15,
            123456789.123,
        ];
        let draw_svg = |chart: &Chart| {
            let mut text = String::new();
            let area = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
            let _ = draw(area, &Labels::default(), chart);
        };
        for &a in &nasty {
            for &b in &nasty {
                let y = vec![a, b, a];
                for (logx, logy) in [(false, false), (true, false), (false, true), (true, true)] {
                    let series = vec![Series {
                        name: Some("s".into()),
                        y: y.clone(),
                    }];
                    draw_svg(&Chart::Xy {
                        x: vec![b, a, 1.0],
                        series,
                        points: false,
                        logx,
                        logy,
                    });
                }
                let series = vec![Series {
                    name: None,
                    y: y.clone(),
                }];
                draw_svg(&Chart::Xy {
                    x: vec![0.0, 1.0, 2.0],
                    series,
                    points: true,
                    logx: false,
                    logy: false,
                });
                draw_svg(&Chart::Hist {
                    series: vec![Series {
                        name: None,
                        y: y.clone(),
                    }],
                    bins: 7,
                });
                let z = ndarray::Array2::from_shape_vec((3, 1), y).expect("3 × 1");
                draw_svg(&Chart::Heatmap { z });
            }
        }
    }

    #[test]
    fn tick_labels_are_short() {
        let cases = [
            (0.0, "0"),
            (-1e-17, "0"),
            (100.0, "100"),
            (0.5, "0.5"),
            (-0.2, "-0.2"),
            (0.30000000000000004, "0.3"),
            (12345.678, "12345.7"),
            (1e-5, "1e-5"),
            (2.5e7, "2.5e7"),
            (0.001, "0.001"),
        ];
        for (v, want) in cases {
            assert_eq!(tick(v), want, "{v}");
        }
    }
}

//! The diagnostics type every layer reports through, and the source map that
//! turns byte spans into file names, lines and columns when a diagnostic is
//! rendered. Spans are byte offsets everywhere else.

use std::fmt;
use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError,
    MietteSpanContents, SourceCode, SourceSpan, SpanContents,
};

/// A byte range in one source file of the session's `SourceMap`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub file: u32,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: u32, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }
    /// The smallest span covering both (which must be in the same file).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
    /// Lines before this text in what the user sees (a REPL input fed through
    /// a pipe is numbered by its line in the whole stream).
    pub line_offset: usize,
}

/// Every text a session has parsed (scripts, modules, REPL inputs, data files
/// named in diagnostics), addressed by the `file` index of a `Span`.
#[derive(Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> u32 {
        self.add_at_line(name, text, 1)
    }
    /// Add a text whose first line is line `first_line` of what the user sees.
    pub fn add_at_line(
        &mut self,
        name: impl Into<String>,
        text: impl Into<Arc<str>>,
        first_line: usize,
    ) -> u32 {
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
            line_offset: first_line.saturating_sub(1),
        });
        (self.files.len() - 1) as u32
    }
    pub fn get(&self, file: u32) -> Option<&SourceFile> {
        self.files.get(file as usize)
    }
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: u32, offset: u32) -> (usize, usize) {
        let Some(f) = self.get(file) else {
            return (0, 0);
        };
        let offset = (offset as usize).min(f.text.len());
        let before = &f.text[..floor_char_boundary(&f.text, offset)];
        let line = f.line_offset + before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
    pub fn describe(&self, span: Span) -> String {
        let (line, col) = self.line_col(span.file, span.start);
        let name = self.get(span.file).map_or("?", |f| f.name.as_str());
        format!("{name}:{line}:{col}")
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One error (flx reports errors only). Boxed, so that the `Result`s of the
/// interpreter's hot paths stay two words wide.
#[derive(Clone, Debug)]
pub struct Diag(Box<DiagData>);

#[derive(Clone, Debug)]
pub struct DiagData {
    /// Namespaced code, e.g. `flx::name::unknown`.
    pub code: &'static str,
    pub message: String,
    pub span: Option<Span>,
    /// Text under the primary span.
    pub label: Option<String>,
    /// Further labelled spans (in the primary span's file).
    pub labels: Vec<(Span, String)>,
    pub help: Option<String>,
    /// flx calls that led here, innermost first: (function name, call site).
    pub trace: Vec<(String, Span)>,
}

impl std::ops::Deref for Diag {
    type Target = DiagData;
    fn deref(&self) -> &DiagData {
        &self.0
    }
}

impl std::ops::DerefMut for Diag {
    fn deref_mut(&mut self) -> &mut DiagData {
        &mut self.0
    }
}

impl Diag {
    pub fn new(code: &'static str, message: impl Into<String>) -> Diag {
        Diag(Box::new(DiagData {
            code,
            message: message.into(),
            span: None,
            label: None,
            labels: Vec::new(),
            help: None,
            trace: Vec::new(),
        }))
    }
    pub fn at(mut self, span: Span) -> Diag {
        self.span = Some(span);
        self
    }
    /// Attach a span only if none is set yet (inner errors keep the more precise one).
    pub fn or_at(mut self, span: Span) -> Diag {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }
    pub fn label(mut self, text: impl Into<String>) -> Diag {
        self.label = Some(text.into());
        self
    }
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Diag {
        self.labels.push((span, text.into()));
        self
    }
    pub fn help(mut self, text: impl Into<String>) -> Diag {
        self.help = Some(text.into());
        self
    }
    pub fn in_call(mut self, function: &str, call_site: Span) -> Diag {
        self.trace.push((function.to_string(), call_site));
        self
    }

    /// Render for a terminal (`color`) or for files and tests (no colour,
    /// fixed width, so snapshots are stable).
    pub fn render(&self, sources: &SourceMap, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        let report = Rendered::new(self, sources);
        let mut out = String::new();
        if handler.render_report(&mut out, &report).is_err() {
            out = format!("error: {}\n", self.message);
        }
        // Repeated frames (deep recursion) collapse into one line and a count.
        let mut i = 0;
        while i < self.trace.len() {
            let (function, site) = &self.trace[i];
            out.push_str(&format!(
                "  in `{function}`, called at {}\n",
                sources.describe(*site)
            ));
            let same = self.trace[i + 1..]
                .iter()
                .take_while(|f| *f == &self.trace[i])
                .count();
            if same > 0 {
                out.push_str(&format!(
                    "  ... the same call {same} more time{}\n",
                    if same == 1 { "" } else { "s" }
                ));
            }
            i += 1 + same;
        }
        out
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diag {}

/// A `Diag` bound to its source text, in the shape miette renders.
struct Rendered {
    message: String,
    code: &'static str,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    source: Option<Source>,
}

/// A source as miette reads it, with its line numbers shifted by `line_offset`.
struct Source {
    name: String,
    text: Arc<str>,
    line_offset: usize,
}

impl SourceCode for Source {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.as_bytes().read_span(span, before, after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.line_offset,
            inner.column(),
            inner.line_count(),
        )))
    }
}

impl Rendered {
    fn new(d: &Diag, sources: &SourceMap) -> Rendered {
        let mut labels = Vec::new();
        let mut source = None;
        let mut help = d.help.clone();
        if let Some(span) = d.span {
            if let Some(file) = sources.get(span.file) {
                let len = file.text.len();
                // miette drops a label at offset == len and panics past it.
                let clamp = |s: Span| {
                    let mut start = (s.start as usize).min(len);
                    let mut end = (s.end as usize).clamp(start, len);
                    if start == len && len > 0 {
                        start = floor_char_boundary(&file.text, len - 1);
                        end = len;
                    }
                    start = floor_char_boundary(&file.text, start);
                    end = floor_char_boundary(&file.text, end);
                    (start, end - start)
                };
                let (o, l) = clamp(span);
                labels.push(LabeledSpan::new(d.label.clone(), o, l));
                for (s, text) in &d.labels {
                    if s.file == span.file {
                        let (o, l) = clamp(*s);
                        labels.push(LabeledSpan::new(Some(text.clone()), o, l));
                    } else {
                        let note = format!("{text} (at {})", sources.describe(*s));
                        help = Some(match help {
                            Some(h) => format!("{h}\n{note}"),
                            None => note,
                        });
                    }
                }
                source = Some(Source {
                    name: file.name.clone(),
                    text: file.text.clone(),
                    line_offset: file.line_offset,
                });
            }
        }
        Rendered {
            message: d.message.clone(),
            code: d.code,
            help,
            labels,
            source,
        }
    }
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for Rendered {}

impl Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

/// "did you mean `x`?" for the closest of `candidates`, if any is close enough.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        let score = strsim::jaro_winkler(name, c);
        let close = strsim::levenshtein(name, c) <= name.len().max(c.len()) / 3;
        // Equal scores go to the first name alphabetically: candidates may
        // come from a hash map, and the suggestion must not depend on its order.
        if (score > 0.85 || close) && best.is_none_or(|(s, b)| score > s || (score == s && c < b)) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn ties_do_not_depend_on_the_order_of_candidates() {
        let want = Some("did you mean `scale_a`?".to_string());
        assert_eq!(did_you_mean("sca", ["scale_a", "scale_w"]), want);
        assert_eq!(did_you_mean("sca", ["scale_w", "scale_a"]), want);
    }
}

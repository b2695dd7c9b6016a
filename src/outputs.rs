//! A run's output folder (`flx run --out DIR`, `out(dir)` in a script): the
//! metrics table as `metrics.csv` and `metrics.jsonl`, one row per `log(...)`,
//! each row written and flushed as it is logged, so a run that crashes or is
//! killed keeps every completed row; and `run.json`, what it takes to repeat
//! the run, written when the folder opens and again, with the outcome and the
//! wall time, when the run ends; and `write_atomic`, how every whole file
//! flx writes is written. Knows nothing of values.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde_json::json;

/// One metric of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Metric {
    /// The CSV cell: floats in full precision (shortest round trip).
    fn cell(&self) -> String {
        match self {
            Metric::Int(i) => i.to_string(),
            Metric::Float(f) => crate::format::float_repr(*f),
            Metric::Bool(b) => b.to_string(),
            Metric::Str(s) => s.clone(),
        }
    }

    /// JSON has no NaN or infinity: those are written as `null`.
    fn json(&self) -> serde_json::Value {
        match self {
            Metric::Int(i) => json!(i),
            Metric::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
            Metric::Bool(b) => json!(b),
            Metric::Str(s) => json!(s),
        }
    }
}

/// What `run.json` records besides the outcome: enough to run it again.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// The script as given on the command line (none in the REPL).
    pub script: Option<PathBuf>,
    /// Its text when the run started.
    pub source: Option<String>,
    /// The `name=value` overrides of `main`, as typed.
    pub overrides: Vec<String>,
    pub seed: u64,
    pub threads: usize,
    pub jit: bool,
    /// The whole command line.
    pub argv: Vec<String>,
}

pub struct Outputs {
    dir: PathBuf,
    info: RunInfo,
    started: Instant,
    started_at: SystemTime,
    csv: File,
    jsonl: File,
    /// The CSV's columns, in order of first appearance.
    columns: Vec<String>,
    /// Data lines written so far, to rewrite the file when a row brings new columns.
    lines: Vec<String>,
    /// Whether `run.json` has its outcome.
    finished: std::cell::Cell<bool>,
}

pub const METRICS_CSV: &str = "metrics.csv";
pub const METRICS_JSONL: &str = "metrics.jsonl";
pub const RUN_JSON: &str = "run.json";

impl Outputs {
    /// Create `dir` (and its parents), start empty metrics files there and
    /// write `run.json` with the status "running".
    pub fn open(dir: &Path, info: RunInfo) -> std::io::Result<Outputs> {
        std::fs::create_dir_all(dir)?;
        let create = |name| File::create(dir.join(name));
        let out = Outputs {
            dir: dir.to_path_buf(),
            info,
            started: Instant::now(),
            started_at: SystemTime::now(),
            csv: create(METRICS_CSV)?,
            jsonl: create(METRICS_JSONL)?,
            columns: Vec::new(),
            lines: Vec::new(),
            finished: std::cell::Cell::new(false),
        };
        out.write_run_json("running", None)?;
        Ok(out)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Append one row to both metrics files. A row with a column the CSV has
    /// not seen rewrites it (through a temporary file) with the wider header;
    /// earlier rows get empty cells there, as pandas' `concat` would give.
    pub fn log(&mut self, row: &[(String, Metric)]) -> std::io::Result<()> {
        let object: serde_json::Map<String, serde_json::Value> =
            row.iter().map(|(n, m)| (n.clone(), m.json())).collect();
        let mut line = serde_json::Value::Object(object).to_string();
        line.push('\n');
        self.jsonl.write_all(line.as_bytes())?;
        self.jsonl.flush()?;

        let added = row
            .iter()
            .filter(|(n, _)| !self.columns.contains(n))
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>();
        let mut cells = vec![String::new(); self.columns.len() + added.len()];
        self.columns.extend(added.iter().cloned());
        for (n, m) in row {
            let j = self.columns.iter().position(|c| c == n).expect("a column");
            cells[j] = m.cell();
        }
        let record = csv_line(&cells)?;
        if added.is_empty() {
            self.csv.write_all(record.as_bytes())?;
            self.csv.flush()?;
        } else {
            let widen = ",".repeat(added.len());
            for l in &mut self.lines {
                l.insert_str(l.len() - 1, &widen);
            }
            let mut text = csv_line(&self.columns)?;
            self.lines.iter().for_each(|l| text.push_str(l));
            text.push_str(&record);
            let path = self.dir.join(METRICS_CSV);
            write_atomic(&path, |w| w.write_all(text.as_bytes()))?;
            self.csv = OpenOptions::new().append(true).open(&path)?;
        }
        self.lines.push(record);
        Ok(())
    }

    /// Rewrite `run.json` with the outcome: `error` is none for a run that
    /// finished, else the diagnostic's text.
    pub fn finish(&self, error: Option<&str>) -> std::io::Result<()> {
        self.finished.set(true);
        self.write_run_json(
            if error.is_some() {
                "failed"
            } else {
                "finished"
            },
            error,
        )
    }

    fn write_run_json(&self, status: &str, error: Option<&str>) -> std::io::Result<()> {
        let info = &self.info;
        let mut run = json!({
            "flx_version": env!("CARGO_PKG_VERSION"),
            "status": status,
            "script": info.script.as_ref().map(|p| p.display().to_string()),
            "overrides": info.overrides,
            "seed": info.seed,
            "threads": info.threads,
            "jit": info.jit,
            "command": info.argv,
            "started_at": humantime::format_rfc3339_seconds(self.started_at).to_string(),
            "source": info.source,
        });
        if status != "running" {
            run["wall_time_s"] = json!(self.started.elapsed().as_secs_f64());
            if let Some(peak) = peak_memory() {
                run["peak_memory_bytes"] = json!(peak);
            }
        }
        if let Some(e) = error {
            run["error"] = json!(e);
        }
        let text = serde_json::to_string_pretty(&run).expect("JSON of plain values");
        write_atomic(&self.dir.join(RUN_JSON), |w| {
            w.write_all(text.as_bytes())?;
            w.write_all(b"\n")
        })
    }
}

/// A session that ends without saying how (the REPL quitting) finished.
impl Drop for Outputs {
    fn drop(&mut self) {
        if !self.finished.get() {
            let _ = self.finish(None);
        }
    }
}

/// One CSV record, quoted where needed, ending in a newline.
fn csv_line(cells: &[String]) -> std::io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(cells)?;
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("UTF-8 in, UTF-8 out"))
}
/// Write through a temporary file in the same folder, renamed into place on
/// success, so a failure never leaves a half-written file.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The most memory this process has held at once (its peak resident set,
/// `VmHWM` in /proc/self/status), in bytes; none where that is not known.
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line["VmHWM:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("flx-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("out.csv");
        std::fs::write(&target, "old").unwrap();
        let r = write_atomic(&target, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

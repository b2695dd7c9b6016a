//! `flx sweep FILE name=v1,v2 other=a..b [--jobs N]`: `flx run` over the grid
//! of overrides, as separate processes (a run that fails or crashes cannot
//! take the others with it), each with its own output folder, then one
//! summary table of the last logged value of every metric of each run.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use crate::outputs::METRICS_JSONL;

/// One parameter of the grid and its values, as text to pass on.
#[derive(Debug, PartialEq)]
pub struct Axis {
    pub name: String,
    pub values: Vec<String>,
}

/// `name=v1,v2,...` (commas inside brackets or quotes do not split) or
/// `name=a..b` / `name=a..=b` (Ints, as flx ranges). Each value must be an
/// flx literal, checked here so that a typo fails before anything runs.
pub fn parse_axis(arg: &str) -> Result<Axis, String> {
    let Some((name, spec)) = arg.split_once('=') else {
        return Err(format!(
            "`{arg}` is not of the form name=v1,v2,... or name=a..b"
        ));
    };
    let range = spec
        .split_once("..=")
        .map(|(a, b)| (a, b, true))
        .or_else(|| spec.split_once("..").map(|(a, b)| (a, b, false)));
    let values = match range {
        Some((a, b, inclusive)) => {
            let int = |s: &str| {
                s.trim().parse::<i64>().map_err(|_| {
                    format!(
                        "`{name}={spec}`: a range takes Ints; list other values: {name}=0.1,0.01"
                    )
                })
            };
            let (a, b) = (int(a)?, int(b)?);
            let end = if inclusive { b.saturating_add(1) } else { b };
            if end <= a || end - a > 10_000 {
                return Err(format!(
                    "`{name}={spec}`: the range must hold 1 to 10000 values"
                ));
            }
            (a..end).map(|v| v.to_string()).collect()
        }
        None => split_values(spec),
    };
    for v in &values {
        crate::parse_literal(v).map_err(|e| format!("`{name}`: {e}"))?;
    }
    Ok(Axis {
        name: name.to_string(),
        values,
    })
}

fn split_values(spec: &str) -> Vec<String> {
    let (mut out, mut cur) = (Vec::new(), String::new());
    let (mut depth, mut quoted) = (0i32, false);
    for c in spec.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' | '(' if !quoted => depth += 1,
            ']' | ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// Every combination of the axes' values, the first axis varying slowest:
/// each a list of `name=value` overrides.
pub fn grid(axes: &[Axis]) -> Vec<Vec<String>> {
    axes.iter().fold(vec![Vec::new()], |runs, axis| {
        runs.iter()
            .flat_map(|run| {
                axis.values.iter().map(move |v| {
                    let mut r = run.clone();
                    r.push(format!("{}={v}", axis.name));
                    r
                })
            })
            .collect()
    })
}

/// A run's folder name: its number, then its overrides, in characters any
/// file system and shell takes.
pub fn folder_name(index: usize, width: usize, overrides: &[String]) -> String {
    let mut name = format!("{index:0width$}");
    for o in overrides {
        name.push('-');
        name.extend(o.chars().map(|c| {
            if c.is_ascii_alphanumeric() || "._=+-".contains(c) {
                c
            } else {
                '_'
            }
        }));
    }
    name.truncate(200);
    name
}

/// How `flx run` is started for each configuration.
pub struct Launch {
    pub exe: PathBuf,
    pub script: PathBuf,
    /// Options before `run` (`--seed`, `--no-jit`, `--threads`).
    pub options: Vec<String>,
    pub jobs: usize,
}

pub struct Outcome {
    pub folder: String,
    pub overrides: Vec<String>,
    /// None when it finished; else what went wrong, in a line.
    pub error: Option<String>,
    pub wall_time_s: f64,
    /// The last value logged of each metric, in order of first appearance.
    pub metrics: Vec<(String, serde_json::Value)>,
}

/// Run every configuration of `runs`, `jobs` at a time, into `dir`;
/// `report` is called as each ends (with how many have ended).
pub fn run_all(
    launch: &Launch,
    dir: &Path,
    runs: Vec<Vec<String>>,
    report: &(dyn Fn(usize, &Outcome) + Sync),
) -> Vec<Outcome> {
    let width = runs.len().to_string().len();
    let queue: Mutex<VecDeque<(usize, Vec<String>)>> =
        Mutex::new(runs.into_iter().enumerate().collect());
    let done: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..launch.jobs.max(1) {
            s.spawn(|| loop {
                let Some((i, overrides)) = queue.lock().expect("queue").pop_front() else {
                    break;
                };
                let folder = folder_name(i + 1, width, &overrides);
                let outcome = run_one(launch, &dir.join(&folder), folder, overrides);
                let mut done = done.lock().expect("results");
                done.push((i, outcome));
                report(done.len(), &done.last().expect("just pushed").1);
            });
        }
    });
    let mut done = done.into_inner().expect("results");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, o)| o).collect()
}

fn run_one(launch: &Launch, out: &Path, folder: String, overrides: Vec<String>) -> Outcome {
    let start = Instant::now();
    let error = (|| {
        std::fs::create_dir_all(out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let file = |name: &str| {
            std::fs::File::create(out.join(name))
                .map_err(|e| format!("cannot create {}: {e}", out.join(name).display()))
        };
        let status = Command::new(&launch.exe)
            .args(&launch.options)
            .arg("run")
            .arg(&launch.script)
            .args(&overrides)
            .arg("--out")
            .arg(out)
            .stdin(Stdio::null())
            .stdout(file("stdout.txt")?)
            .stderr(file("stderr.txt")?)
            .status()
            .map_err(|e| format!("cannot start {}: {e}", launch.exe.display()))?;
        if status.success() {
            return Ok(());
        }
        let why = match status.code() {
            Some(code) => format!("exit code {code}"),
            None => "killed by a signal".to_string(),
        };
        let stderr = std::fs::read_to_string(out.join("stderr.txt")).unwrap_or_default();
        Err(match first_message(&stderr) {
            Some(m) => format!("{why}: {m}"),
            None => why,
        })
    })()
    .err();
    Outcome {
        folder,
        overrides,
        error,
        wall_time_s: start.elapsed().as_secs_f64(),
        metrics: last_metrics(&out.join(METRICS_JSONL)),
    }
}

/// The main line of a diagnostic (miette's `× message`), or the first line.
fn first_message(stderr: &str) -> Option<String> {
    let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .find_map(|l| l.strip_prefix("× ").map(str::to_string))
        .or_else(|| lines().next().map(str::to_string))
}

/// The last value of each metric in a `metrics.jsonl` (none if there is no file).
fn last_metrics(path: &Path) -> Vec<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out: Vec<(String, serde_json::Value)> = Vec::new();
    for line in text.lines() {
        let Ok(serde_json::Value::Object(row)) = serde_json::from_str(line) else {
            continue;
        };
        for (k, v) in row {
            match out.iter_mut().find(|(n, _)| *n == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
    }
    out
}

/// The summary table: a row per run with its overrides, outcome, wall time
/// and last metrics (columns in order of first appearance over the runs).
pub fn summary(axes: &[Axis], outcomes: &[Outcome]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut metric_names: Vec<String> = Vec::new();
    for o in outcomes {
        for (k, _) in &o.metrics {
            if !metric_names.contains(k) {
                metric_names.push(k.clone());
            }
        }
    }
    let mut header = vec!["run".to_string()];
    header.extend(axes.iter().map(|a| a.name.clone()));
    header.extend(["status", "wall_time_s"].map(String::from));
    header.extend(metric_names.iter().cloned());
    header.push("error".into());
    let rows = outcomes
        .iter()
        .map(|o| {
            let mut row = vec![o.folder.clone()];
            row.extend(
                o.overrides
                    .iter()
                    .map(|ov| ov.split_once('=').map_or("", |(_, v)| v).to_string()),
            );
            row.push(
                if o.error.is_none() {
                    "finished"
                } else {
                    "failed"
                }
                .into(),
            );
            row.push(format!("{:.3}", o.wall_time_s));
            for name in &metric_names {
                row.push(
                    match o.metrics.iter().find(|(k, _)| k == name).map(|(_, v)| v) {
                        None | Some(serde_json::Value::Null) => String::new(),
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    },
                );
            }
            row.push(o.error.clone().unwrap_or_default());
            row
        })
        .collect();
    (header, rows)
}

/// The summary table as CSV (through a temporary file).
pub fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) -> std::io::Result<()> {
    crate::outputs::write_atomic(path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(header)?;
        for r in rows {
            csv.write_record(r)?;
        }
        csv.flush()
    })
}

/// Where a sweep goes when no `--out` is given: `sweeps/STEM`, or
/// `sweeps/STEM-2`, ... when that exists, so no earlier sweep is overwritten.
pub fn default_dir(script: &Path) -> PathBuf {
    let stem = script
        .file_stem()
        .map_or("sweep".into(), |s| s.to_string_lossy().to_string());
    let base = Path::new("sweeps");
    (1..)
        .map(|k| {
            base.join(if k == 1 {
                stem.clone()
            } else {
                format!("{stem}-{k}")
            })
        })
        .find(|p| !p.exists())
        .expect("a free name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_and_grid() {
        let a = parse_axis("lr=0.1,0.01").unwrap();
        assert_eq!(a.values, ["0.1", "0.01"]);
        let b = parse_axis("n=1..3").unwrap();
        assert_eq!(b.values, ["1", "2"]);
        assert_eq!(parse_axis("n=1..=3").unwrap().values, ["1", "2", "3"]);
        assert_eq!(
            parse_axis("w=[1, 2],\"a,b\"").unwrap().values,
            ["[1, 2]", "\"a,b\""]
        );
        assert!(parse_axis("n=1.5..3").is_err());
        assert!(parse_axis("n=3..1").is_err());
        assert!(parse_axis("lr").is_err());
        assert!(parse_axis("f=@").is_err());
        assert_eq!(
            grid(&[a, b]),
            [
                ["lr=0.1", "n=1"],
                ["lr=0.1", "n=2"],
                ["lr=0.01", "n=1"],
                ["lr=0.01", "n=2"]
            ]
        );
        assert_eq!(
            folder_name(3, 2, &["lr=0.1".into(), "k=\"a b/c\"".into()]),
            "03-lr=0.1-k=_a_b_c_"
        );
    }
}

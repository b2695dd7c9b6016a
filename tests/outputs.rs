//! What a run keeps (`--out`, `out(dir)`, figures, `flx sweep`), checked on
//! the files themselves: the metrics as CSV and JSON lines, `run.json`, rows
//! kept by a run killed mid-way, PNG and SVG figures that decode, and a
//! sweep's folders and summary.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/figure.rs"]
mod figure;
use figure::check_figure;
#[path = "common/process.rs"]
mod process;
use process::{flx, flx_piped, text};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .expect("a CSV file")
        .records()
        .map(|r| r.expect("a CSV record").iter().map(String::from).collect())
        .collect()
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    read(path)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&read(&dir.join("run.json"))).expect("run.json is JSON")
}

#[test]
fn every_logged_row_lands_in_the_metrics_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = flx(&[
        "--seed=7",
        "run",
        "tests/outputs/metrics.flx",
        "n=2",
        "tag=\"x,y\"",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // A column first seen in a later row widens the CSV; earlier rows get empty cells.
    assert_eq!(
        csv_rows(&out.join("metrics.csv")),
        [
            vec!["step", "loss", "tag", "done"],
            vec!["0", "1.0", "x,y", ""],
            vec!["1", "0.5", "x,y", ""],
            vec!["2", "nan", "", "true"],
        ]
    );
    let rows = json_lines(&out.join("metrics.jsonl"));
    assert_eq!(
        rows,
        [
            serde_json::json!({"step": 0, "loss": 1.0, "tag": "x,y"}),
            serde_json::json!({"step": 1, "loss": 0.5, "tag": "x,y"}),
            serde_json::json!({"step": 2, "loss": null, "done": true}),
        ]
    );
    let run = run_json(&out);
    assert_eq!(run["status"], "finished");
    assert_eq!(run["seed"], 7);
    assert_eq!(run["overrides"], serde_json::json!(["n=2", "tag=\"x,y\""]));
    assert_eq!(run["script"], "tests/outputs/metrics.flx");
    assert_eq!(run["flx_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        run["source"].as_str(),
        Some(read(Path::new("tests/outputs/metrics.flx")).as_str())
    );
    assert!(
        run["wall_time_s"].as_f64().is_some_and(|t| t > 0.0),
        "{run}"
    );
    // The process's peak memory: at least the interpreter itself.
    assert!(
        run["peak_memory_bytes"]
            .as_u64()
            .is_some_and(|b| b > 1 << 20),
        "{run}"
    );
    assert!(
        run["started_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{run}"
    );
}

#[test]
fn a_run_killed_mid_way_keeps_its_completed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flx"))
        .args(["run", "tests/outputs/killed.flx", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("flx starts");
    let jsonl = out.join("metrics.jsonl");
    let start = Instant::now();
    while std::fs::read_to_string(&jsonl).map_or(0, |t| t.lines().count()) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no rows after a minute"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert_eq!(
        csv_rows(&out.join("metrics.csv")),
        [
            vec!["step", "loss"],
            vec!["0", "1.0"],
            vec!["1", "0.5"],
            vec!["2", "0.3333333333333333"],
        ]
    );
    assert_eq!(json_lines(&jsonl).len(), 3);
    assert_eq!(run_json(&out)["status"], "running");
}

#[test]
fn a_failed_run_says_why_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = flx(&[
        "run",
        "tests/outputs/fails.flx",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let run = run_json(&out);
    assert_eq!(run["status"], "failed");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(error.contains("fails.flx:3:"), "{error}");
    assert_eq!(json_lines(&out.join("metrics.jsonl")).len(), 2);
}

#[test]
fn figures_are_well_formed_svg_and_png() {
    for ext in ["svg", "png"] {
        let dir = tempfile::tempdir().unwrap();
        let o = flx(&[
            "run",
            "tests/outputs/figures.flx",
            &format!("ext={ext}"),
            "--out",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let printed: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
        let names = ["line", "log", "scatter", "heatmap", "hist"];
        assert_eq!(printed.len(), names.len());
        for (name, path) in names.iter().zip(&printed) {
            let want = dir.path().join(format!("{name}.{ext}"));
            assert_eq!(Path::new(path), want);
            let title = match *name {
                "line" => Some("Trig"),
                "heatmap" => Some("M"),
                _ => None,
            };
            check_figure(&want, title);
        }
    }
}

#[test]
fn a_figure_without_a_file_goes_to_a_temporary_one() {
    let o = flx_piped(&["repl"], "plot.heatmap(eye(3))\n", &[]);
    let stdout = text(&o.stdout);
    let path = stdout.trim().trim_matches('"');
    assert!(path.ends_with(".svg"), "{stdout}{}", text(&o.stderr));
    check_figure(Path::new(path), None);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn out_in_a_script_opens_a_folder_beside_it_unless_the_command_line_chose_one() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.flx");
    std::fs::copy("tests/outputs/out_in_script.flx", &script).unwrap();
    let o = flx(&["run", script.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mine = dir.path().join("runs/mine");
    assert_eq!(json_lines(&mine.join("metrics.jsonl")).len(), 1);
    let stdout = text(&o.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some(mine.join("fig.svg").to_str().unwrap())
    );
    check_figure(&mine.join("fig.svg"), None);
    assert_eq!(run_json(&mine)["status"], "finished");

    let chosen = dir.path().join("chosen");
    let o = flx(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        chosen.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(chosen.join("fig.svg").exists());
    assert_eq!(json_lines(&chosen.join("metrics.jsonl")).len(), 1);
}

#[test]
fn a_sweep_runs_the_grid_and_survives_a_failing_run() {
    let dir = tempfile::tempdir().unwrap();
    let o = flx(&[
        "sweep",
        "tests/outputs/sweep.flx",
        "a=1,2",
        "b=10,20",
        "--jobs=2",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "one run fails: {}",
        text(&o.stderr)
    );
    let folders = ["1-a=1-b=10", "2-a=1-b=20", "3-a=2-b=10", "4-a=2-b=20"];
    let mut found: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    found.sort();
    assert_eq!(found, folders);
    for f in folders {
        assert!(dir.path().join(f).join("run.json").exists(), "{f}");
    }
    let rows = csv_rows(&dir.path().join("summary.csv"));
    assert_eq!(
        rows[0],
        [
            "run",
            "a",
            "b",
            "status",
            "wall_time_s",
            "step",
            "score",
            "error"
        ]
    );
    let cells = |r: &Vec<String>| {
        let mut c = r.clone();
        c.remove(4); // the wall time varies
        c
    };
    let rows: Vec<Vec<String>> = rows[1..].iter().map(cells).collect();
    assert_eq!(
        rows,
        [
            ["1-a=1-b=10", "1", "10", "finished", "1", "1010", ""],
            ["2-a=1-b=20", "1", "20", "finished", "1", "1020", ""],
            ["3-a=2-b=10", "2", "10", "finished", "1", "2010", ""],
            [
                "4-a=2-b=20",
                "2",
                "20",
                "failed",
                "0",
                "220",
                "exit code 1: assertion failed: a deliberate failure"
            ],
        ]
    );
    let stdout = text(&o.stdout);
    assert!(stdout.contains("summary: "), "{stdout}");
    assert!(text(&o.stderr).contains("1 of 4 runs failed"));
}

#[test]
fn sweep_checks_its_grid_before_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let typo = flx(&["sweep", "tests/outputs/sweep.flx", "aa=1,2", "--out", d]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        text(&typo.stderr).contains("did you mean `a`?"),
        "{}",
        text(&typo.stderr)
    );
    let bad = flx(&["sweep", "tests/outputs/sweep.flx", "a=1.5..3", "--out", d]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("a range takes Ints"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_repl_session_with_an_output_folder_finishes_its_run_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("out({:?})\nlog(a: 1)\n", dir.path().display().to_string());
    let o = flx_piped(&["repl"], &input, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(run_json(dir.path())["status"], "finished");
    assert_eq!(json_lines(&dir.path().join("metrics.jsonl")).len(), 1);
}

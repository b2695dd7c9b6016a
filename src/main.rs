//! The `flx` command line: parse arguments, call the library, print diagnostics.
//! Exit codes: 0 success, 1 an error in the script, 2 a usage error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flx::{Options, Session, StdHost};

#[derive(Parser)]
#[command(
    name = "flx",
    version,
    about = "A small language for feature-learning experiments"
)]
struct Cli {
    /// Worker threads for linear algebra and tensor kernels (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Seed of the session's random generator (calls with `seed:` use their own).
    #[arg(long, global = true, default_value_t = 0)]
    seed: u64,
    /// Run everything in the interpreter, without compiling to machine code
    /// (the same results; also FLX_NO_JIT=1).
    #[arg(long, global = true)]
    no_jit: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a script, then its `proc main` with `name=value` overrides.
    Run {
        file: PathBuf,
        /// Overrides of `main`'s parameters, e.g. `iters=10 kernel="gaussian"`.
        overrides: Vec<String>,
        /// Folder for the run's metrics (`metrics.csv`, `metrics.jsonl`),
        /// `run.json` and the files it writes with relative paths.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Run `main` over a grid of overrides, several processes at a time, each
    /// into its own output folder; then write `summary.csv`, a row per run
    /// with the last value of each logged metric. A failed run does not stop
    /// the others.
    Sweep {
        file: PathBuf,
        /// One per parameter of the grid: `name=v1,v2,...` or `name=a..b`
        /// (Ints; `a..=b` includes b).
        #[arg(required = true)]
        grid: Vec<String>,
        /// Runs at a time (default: the number of cores); each gets an equal
        /// share of the threads unless --threads says otherwise.
        #[arg(long)]
        jobs: Option<usize>,
        /// Folder for the runs and the summary (default: sweeps/STEM, or
        /// sweeps/STEM-2, ... when taken).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Parse and check a script without running it; reports every error.
    Check { file: PathBuf },
    /// The interactive session (also plain `flx`); FILE runs first and its
    /// names stay. Reads inputs from stdin when it is not a terminal.
    Repl { file: Option<PathBuf> },
    /// Print a script highlighted with ANSI colours (plain under NO_COLOR), or
    /// as an HTML page.
    Highlight {
        file: PathBuf,
        #[arg(long)]
        html: bool,
    },
}

/// The interpreter recurses over the syntax tree; give it room.
const STACK_BYTES: usize = 512 << 20;

fn main() -> ExitCode {
    // A panic is a bug in flx: say so in one line, without Rust's backtrace advice.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("flx: internal error: {info}\nthis is a bug in flx; please report it with the script that caused it");
    }));
    flx::keep_freed_memory();
    let cli = Cli::parse();
    let threads = cli.threads.unwrap_or_else(flx::default_threads);
    flx::set_threads(threads);
    let child = std::thread::Builder::new()
        .stack_size(STACK_BYTES)
        .spawn(move || run(cli));
    match child.map(|h| h.join()) {
        Ok(Ok(code)) => ExitCode::from(code),
        _ => {
            eprintln!(
                "error: flx failed unexpectedly (this is a bug; please report it with the script)"
            );
            ExitCode::from(101)
        }
    }
}

fn color() -> bool {
    !flx::no_color() && std::io::stderr().is_terminal()
}

/// What a sweep passes on to each run.
struct CliOptions {
    threads: Option<usize>,
    seed: u64,
    no_jit: bool,
}

fn run(cli: Cli) -> u8 {
    let cli_options = CliOptions {
        threads: cli.threads,
        seed: cli.seed,
        no_jit: cli.no_jit,
    };
    let options = Options {
        seed: cli.seed,
        step_limit: None,
        no_jit: cli.no_jit,
    };
    let new_session = || Session::new(StdHost::new(std::io::stdout()), &options);
    match cli.command {
        Some(Command::Run {
            file,
            overrides,
            out,
        }) => {
            let mut session = new_session();
            session.describe_run(&file, &overrides);
            if let Some(dir) = &out {
                if let Err(msg) = session.open_outputs(dir) {
                    eprintln!("error: {msg}");
                    return 1;
                }
            }
            let failure = run_script(&mut session, &file, &overrides).err();
            let text = |color| match &failure {
                Some(Failure::Script(diags)) => session.render(diags, color),
                Some(Failure::Usage(msg)) => format!("error: {msg}\n"),
                None => String::new(),
            };
            eprint!("{}", text(color()));
            let code = match failure {
                None => 0,
                Some(Failure::Script(_)) => 1,
                Some(Failure::Usage(_)) => 2,
            };
            if let Err(msg) =
                session.finish_outputs(failure.is_some().then(|| text(false)).as_deref())
            {
                eprintln!("error: {msg}");
                return code.max(1);
            }
            code
        }
        Some(Command::Sweep {
            file,
            grid,
            jobs,
            out,
        }) => sweep(&cli_options, new_session(), &file, &grid, jobs, out),
        Some(Command::Check { file }) => {
            let mut session = new_session();
            match session.check_file(&file) {
                Ok(()) => 0,
                Err(diags) => {
                    eprint!("{}", session.render(&diags, color()));
                    eprintln!(
                        "{} error{} found",
                        diags.len(),
                        if diags.len() == 1 { "" } else { "s" }
                    );
                    1
                }
            }
        }
        Some(Command::Repl { file }) => flx::repl::main(options, file.as_deref()),
        None => flx::repl::main(options, None),
        Some(Command::Highlight { file, html }) => highlight(&file, html),
    }
}

enum Failure {
    /// An error in the script (exit code 1).
    Script(Vec<flx::diag::Diag>),
    /// A usage error on the command line (exit code 2).
    Usage(String),
}

/// Run the file, then its `main` with the overrides.
fn run_script(
    session: &mut Session,
    file: &std::path::Path,
    overrides: &[String],
) -> Result<(), Failure> {
    session.run_file(file).map_err(Failure::Script)?;
    let overrides = session.parse_overrides(overrides).map_err(Failure::Usage)?;
    session.call_main(overrides).map_err(Failure::Script)?;
    Ok(())
}

fn sweep(
    cli: &CliOptions,
    mut session: Session,
    file: &std::path::Path,
    grid: &[String],
    jobs: Option<usize>,
    out: Option<PathBuf>,
) -> u8 {
    use flx::sweep;
    if let Err(diags) = session.check_file(file) {
        eprint!("{}", session.render(&diags, color()));
        return 1;
    }
    let axes = match grid
        .iter()
        .map(|a| sweep::parse_axis(a))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(axes) => axes,
        Err(msg) => {
            eprintln!("error: {msg}");
            return 2;
        }
    };
    // Every value of every axis, checked against `main`'s parameters and
    // their types before anything runs.
    for axis in &axes {
        for v in &axis.values {
            if let Err(msg) = session.parse_overrides(&[format!("{}={v}", axis.name)]) {
                eprintln!("error: {msg}");
                return 2;
            }
        }
    }
    let runs = sweep::grid(&axes);
    let cores = flx::default_threads();
    let jobs = jobs.unwrap_or(cores).clamp(1, runs.len());
    let threads = cli.threads.unwrap_or((cores / jobs).max(1));
    let mut options = vec![
        format!("--threads={threads}"),
        format!("--seed={}", cli.seed),
    ];
    if cli.no_jit {
        options.push("--no-jit".into());
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find the flx executable: {e}");
            return 1;
        }
    };
    let dir = out.unwrap_or_else(|| sweep::default_dir(file));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return 1;
    }
    let total = runs.len();
    println!(
        "sweep: {total} runs of {}, {jobs} at a time, into {}",
        file.display(),
        dir.display()
    );
    let launch = sweep::Launch {
        exe,
        script: file.to_path_buf(),
        options,
        jobs,
    };
    let outcomes = sweep::run_all(&launch, &dir, runs, &|k, o| match &o.error {
        None => println!(
            "[{k}/{total}] {} finished in {:.1} s",
            o.folder, o.wall_time_s
        ),
        Some(e) => println!("[{k}/{total}] {} failed: {e}", o.folder),
    });
    let (header, rows) = sweep::summary(&axes, &outcomes);
    let path = dir.join("summary.csv");
    let written = sweep::write_csv(&path, &header, &rows);
    print!(
        "{}",
        flx::eval::format::table(
            &header[..header.len() - 1],
            &rows
                .iter()
                .map(|r| r[..r.len() - 1].to_vec())
                .collect::<Vec<_>>()
        )
    );
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    match written {
        Ok(()) => println!("summary: {}", path.display()),
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            return 1;
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {total} runs failed; their stderr.txt and run.json say why");
        return 1;
    }
    0
}

fn highlight(file: &std::path::Path, html: bool) -> u8 {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return 1;
        }
    };
    let out = if html {
        flx::highlight::html(&file.display().to_string(), &text)
    } else if flx::no_color() {
        text
    } else {
        flx::highlight::ansi(&text)
    };
    print!("{out}");
    0
}

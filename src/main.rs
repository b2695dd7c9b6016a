//! The `flx` command line: parse arguments, call the library, print diagnostics.
//! Exit codes: 0 success, 1 an error in the script, 2 a usage error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flx::{Options, Session};

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

fn run(cli: Cli) -> u8 {
    let options = Options {
        seed: cli.seed,
        step_limit: None,
        no_jit: cli.no_jit,
    };
    let new_session = || Session::new(Box::new(std::io::stdout()), &options);
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
            if let Err(msg) = session.finish_outputs(failure.is_some().then(|| text(false)).as_deref()) {
                eprintln!("error: {msg}");
                return code.max(1);
            }
            code
        }
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
    let overrides = session
        .parse_overrides(overrides)
        .map_err(Failure::Usage)?;
    session.call_main(overrides).map_err(Failure::Script)?;
    Ok(())
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

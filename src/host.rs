//! Every effect of a session goes through its `Host`: printing, reading and
//! writing files, the clock, the run's output folder and the interrupt flag.
//! The interpreter performs none itself, so each front end supplies its
//! own: `flx run` and the REPL a `StdHost` on standard output, the fuzzer
//! one that refuses writes, tests and embedding programs one that captures
//! output or serves files from memory.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The peak memory of the process, for `:vars` (the REPL reaches outputs
/// through the host).
pub use crate::outputs::peak_memory;
use crate::outputs::{write_atomic, Outputs, RunInfo};

pub trait Host {
    /// One line of the program's output (`print`, the rows `log` shows).
    fn print(&mut self, line: &str) -> io::Result<()>;

    /// The bytes of a file (`load_csv`, `load_npy`).
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;

    /// A whole file (`save_csv`, `save_npy`, figures), written so that a
    /// failure leaves no half-written file.
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;

    /// Whether this session may write files at all; when not, every builtin
    /// that would write says so before doing any work.
    fn may_write(&self) -> bool;

    /// Time since the session started (`time()`).
    fn elapsed(&self) -> Duration;

    /// A new path for a figure drawn without a file name.
    fn temporary_file(&mut self, extension: &str) -> PathBuf;

    /// The run's output folder, once one is open.
    fn outputs(&mut self) -> Option<&mut Outputs>;

    /// Open the run's output folder (`--out DIR`, `out(dir)`).
    fn open_outputs(&mut self, dir: &Path, info: RunInfo) -> io::Result<()>;

    /// The flag that stops a computation, if something can raise it (the
    /// REPL's Ctrl-C handler); long factorisations then run in stoppable panels.
    fn interrupt(&self) -> Option<Arc<AtomicBool>>;

    /// A figure `plot.*` has just written to `path` (SVG or PNG bytes):
    /// a notebook's host shows it.
    fn figure(&mut self, _path: &Path, _bytes: &[u8]) {}

    /// A remark about how the run goes, not part of its output (which
    /// solver `krr` chose): standard error unless the host says otherwise.
    fn note(&mut self, line: &str) {
        crate::progress::suspend(|| eprintln!("{line}"));
    }
}

fn writes_disabled() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "writing is disabled")
}

/// The host of the command line and the REPL: output to a writer, the real
/// file system, the wall clock.
pub struct StdHost {
    out: Box<dyn Write>,
    writes: bool,
    started: Instant,
    outputs: Option<Outputs>,
    interrupt: Option<Arc<AtomicBool>>,
}

impl StdHost {
    pub fn new(out: impl Write + 'static) -> StdHost {
        StdHost {
            out: Box::new(out),
            writes: true,
            started: Instant::now(),
            outputs: None,
            interrupt: None,
        }
    }

    /// The same, refusing every write (the fuzzer's).
    pub fn read_only(mut self) -> StdHost {
        self.writes = false;
        self
    }

    /// The same, stopped by raising `flag`.
    pub fn interrupted_by(mut self, flag: Arc<AtomicBool>) -> StdHost {
        self.interrupt = Some(flag);
        self
    }
}

impl Host for StdHost {
    fn print(&mut self, line: &str) -> io::Result<()> {
        crate::progress::suspend(|| {
            writeln!(self.out, "{line}")?;
            self.out.flush()
        })
    }

    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if !self.writes {
            return Err(writes_disabled());
        }
        write_atomic(path, |w| w.write_all(bytes))
    }

    fn may_write(&self) -> bool {
        self.writes
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn temporary_file(&mut self, extension: &str) -> PathBuf {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!(
            "flx-{}-plot{}.{extension}",
            std::process::id(),
            n + 1
        ))
    }

    fn outputs(&mut self) -> Option<&mut Outputs> {
        self.outputs.as_mut()
    }

    fn open_outputs(&mut self, dir: &Path, info: RunInfo) -> io::Result<()> {
        if !self.writes {
            return Err(writes_disabled());
        }
        self.outputs = Some(Outputs::open(dir, info)?);
        Ok(())
    }

    fn interrupt(&self) -> Option<Arc<AtomicBool>> {
        self.interrupt.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_host_refuses_writes() {
        let mut h = StdHost::new(io::sink()).read_only();
        assert!(!h.may_write());
        let path = std::env::temp_dir().join("flx-never-written");
        assert!(h.write(&path, b"x").is_err() && !path.exists());
        assert!(h.open_outputs(&path, RunInfo::default()).is_err());
    }
}

//! Progress bars for long work: `train`, `krr` on many rows, and `for` loops
//! over `progress(...)` (the RFM loop of `std.rfm` is one). A bar is drawn on
//! standard error only when that is a terminal, and only once its work has
//! taken `SHOW_AFTER`, so short work and piped output show nothing. Bars nest
//! (an RFM loop over its `krr` calls); lines printed meanwhile go above them
//! (`suspend`).

use std::io::IsTerminal;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar appears once its work has taken this long.
pub const SHOW_AFTER: Duration = Duration::from_secs(1);

static BARS: LazyLock<MultiProgress> =
    LazyLock::new(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));

pub struct Progress {
    bar: ProgressBar,
    /// Whether the bar's work is over; the thread that reveals the bar checks it.
    done: Arc<Mutex<bool>>,
    revealer: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// A bar of `len` steps, or a spinner without one, drawn with an
    /// indicatif `template` (`{prefix}` is `label`).
    pub fn new(len: Option<u64>, template: &str, label: &str) -> Progress {
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        let done = Arc::new(Mutex::new(false));
        let revealer = std::io::stderr().is_terminal().then(|| {
            let (bar, done) = (bar.clone(), done.clone());
            std::thread::spawn(move || {
                std::thread::park_timeout(SHOW_AFTER);
                let done = done.lock().unwrap_or_else(|e| e.into_inner());
                if !*done {
                    BARS.add(bar.clone());
                    // Ticks keep the time and the spinner moving while a step is long.
                    bar.enable_steady_tick(Duration::from_millis(200));
                }
            })
        });
        Progress {
            bar,
            done,
            revealer,
        }
    }

    pub fn set(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    pub fn message(&self, msg: impl Into<std::borrow::Cow<'static, str>>) {
        self.bar.set_message(msg);
    }
}

/// Cleared however the work ends.
impl Drop for Progress {
    fn drop(&mut self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        if let Some(r) = self.revealer.take() {
            r.thread().unpark();
        }
        self.bar.finish_and_clear();
        BARS.remove(&self.bar);
    }
}

/// Run `write` (a line to standard output) with the bars lifted, so the line
/// lands above them instead of through them.
pub fn suspend<R>(write: impl FnOnce() -> R) -> R {
    BARS.suspend(write)
}

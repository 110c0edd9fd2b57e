//! A progress line for people at a terminal, and nothing for anyone else: it is drawn only
//! when the CLI enabled it (stderr is a terminal and logs are human), so schedulers, CI
//! logs and library callers never get control characters.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turn progress lines on for this process if stderr is a terminal and `human_logs`.
pub fn enable_if_terminal(human_logs: bool) {
    if human_logs && std::io::stderr().is_terminal() {
        ENABLED.store(true, Ordering::Relaxed);
    }
}

/// The progress of one run: committed chunks, rows in and out.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Start a progress line (a no-op unless enabled).
    pub fn start() -> Progress {
        if !ENABLED.load(Ordering::Relaxed) {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {human_pos} rows in · {msg} · {elapsed}")
                .expect("the template is valid"),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Progress { bar: Some(bar) }
    }

    /// A chunk was committed; totals so far.
    pub fn chunk(&self, chunks: u64, rows_in: u64, rows_out: u64) {
        if let Some(b) = &self.bar {
            b.set_position(rows_in);
            b.set_message(format!("{chunks} chunks, {rows_out} rows out"));
        }
    }

    /// The run ended: leave a final line on success, clear the line otherwise.
    pub fn finish(&self, done: Option<String>) {
        if let Some(b) = &self.bar {
            match done {
                Some(m) => b.finish_with_message(m),
                None => b.finish_and_clear(),
            }
        }
    }
}

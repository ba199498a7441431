//! Progress of `transfer --wait` on stderr: a spinner when stderr is a terminal, otherwise one plain
//! line per change of state (logs and CI stay readable, nothing redraws).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the spinner redraws.
const SPINNER_TICK: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub enum Progress {
    Spinner { bar: ProgressBar, started: Instant },
    Lines { last: Option<String> },
}

impl Progress {
    /// A spinner if stderr is a terminal, plain lines otherwise.
    pub fn start() -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar.set_message("submitted");
            bar.enable_steady_tick(SPINNER_TICK);
            Progress::Spinner {
                bar,
                started: Instant::now(),
            }
        } else {
            Progress::Lines { last: None }
        }
    }

    /// Shows the current state ("pending", "node unreachable, retrying", ...).
    pub fn update(&mut self, state: &str) {
        match self {
            Progress::Spinner { bar, started } => {
                let secs = started.elapsed().as_secs_f64();
                bar.set_message(format!("{state}... {secs:.1}s"));
            }
            Progress::Lines { last } => {
                if last.as_deref() != Some(state) {
                    crate::output::errln!("{state}...");
                    *last = Some(state.to_string());
                }
            }
        }
    }

    /// Removes the spinner and prints the outcome as a line of its own.
    pub fn finish(self, line: &str) {
        if let Progress::Spinner { bar, .. } = &self {
            bar.finish_and_clear();
        }
        crate::output::errln!("{line}");
    }

    /// Removes the spinner without a line (the error report follows).
    pub fn abandon(self) {
        if let Progress::Spinner { bar, .. } = &self {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_only_print_changes() {
        let mut p = Progress::Lines { last: None };
        p.update("pending");
        p.update("pending");
        assert!(matches!(&p, Progress::Lines { last: Some(s) } if s == "pending"));
        p.update("node unreachable, retrying");
        assert!(matches!(&p, Progress::Lines { last: Some(s) } if s.starts_with("node")));
    }
}

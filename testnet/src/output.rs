//! Output for people: aligned tables, short hashes, durations, and progress that draws on a terminal
//! and falls back to occasional plain lines when stderr is a file or a pipe (CI logs stay readable).
//!
//! Commands print to stdout with [`outln!`]/[`out!`], which return the write error instead of
//! panicking like `println!`: `testnet status | head -3` then ends quietly (see `main`). Notes go to
//! stderr with [`errln!`], and the supervisor of `testnet up` prints with [`sayln!`]: both ignore a
//! closed stream, because a reader that went away (`testnet up | tee log`, then Ctrl-C, which stops
//! `tee` first) must not stop the supervisor before it has stopped the nodes. `println!` and
//! `eprintln!` panic on a closed stream; clippy.toml disallows them in this crate.

/// `println!` that returns an `anyhow` error from the enclosing function when stdout is gone.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            return Err(anyhow::Error::from(e).into());
        }
    }};
}

/// `print!` that returns an `anyhow` error from the enclosing function when stdout is gone.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*) {
            return Err(anyhow::Error::from(e).into());
        }
    }};
}

/// `eprintln!` that ignores a closed stderr instead of panicking.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that ignores a closed stdout: for output whose loss must not change what the
/// program does next (the supervisor's reports, the shutdown of every node).
#[macro_export]
macro_rules! sayln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A plain text table: columns padded to their widest cell, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cols = headers.len();
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, c) in cells.enumerate().take(cols) {
            if i + 1 < cols {
                l.push_str(&format!("{c:<w$}  ", w = width[i]));
            } else {
                l.push_str(c);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// The first 12 hex characters of a hash: enough to compare by eye.
pub fn short(hash: &impl std::fmt::Display) -> String {
    let s = hash.to_string();
    s.chars().take(12).collect()
}

/// `1.23 s`, `850 ms`.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// A progress line: a spinner on a terminal; otherwise the message printed at most every
/// `plain_every` (and always when it is the final one).
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    plain_every: Duration,
    last_plain: Option<Instant>,
    last_msg: String,
}

impl Progress {
    pub fn new(plain_every: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(100));
            b
        });
        Progress {
            bar,
            plain_every,
            last_plain: None,
            last_msg: String::new(),
        }
    }

    pub fn set(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        match &self.bar {
            Some(b) => b.set_message(msg.clone()),
            None => {
                let due = self
                    .last_plain
                    .is_none_or(|t| t.elapsed() >= self.plain_every);
                if due && msg != self.last_msg {
                    crate::errln!("{msg}");
                    self.last_plain = Some(Instant::now());
                }
            }
        }
        self.last_msg = msg;
    }

    /// Prints a line above the spinner (or plainly).
    pub fn println(&self, msg: impl AsRef<str>) {
        match &self.bar {
            Some(b) => b.println(msg.as_ref()),
            None => crate::errln!("{}", msg.as_ref()),
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["a", "bbb"],
            &[
                vec!["xxxx".into(), "y".into()],
                vec!["z".into(), "w".into()],
            ],
        );
        assert_eq!(t, "a     bbb\nxxxx  y\nz     w\n");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(secs(Duration::from_millis(850)), "850 ms");
        assert_eq!(secs(Duration::from_millis(1234)), "1.23 s");
    }
}

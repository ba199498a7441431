//! `testnet logs <i>`: the end of a node's log, and with `-f` everything appended after it.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::node::tail_lines;
use crate::state::State;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The node's index.
    pub index: usize,
    /// Lines to show.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
    /// Keep printing what the node appends, until Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

pub fn run(dir: &Path, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let state = State::load(dir)?;
    let path = state.node(args.index)?.log_path();
    let lines =
        tail_lines(&path, args.lines).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut f =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut pos = f.seek(SeekFrom::End(0))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Truncated or replaced (reset + up): start from its beginning.
            f = std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            pos = 0;
        }
        f.seek(SeekFrom::Start(pos))?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            pos += n as u64;
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(200));
    }
}

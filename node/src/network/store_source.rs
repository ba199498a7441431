//! The store as the network's [`BlockSource`]: what peers that catch up download.

use ledger_core::{Height, codec};

use super::BlockSource;
use crate::store::Store;

impl BlockSource for Store {
    fn head_height(&self) -> u64 {
        match Store::head_height(self) {
            Ok(h) => h.0,
            Err(e) => {
                tracing::error!(%e, "cannot read the head height for a peer");
                0
            }
        }
    }

    fn encoded_blocks(&self, from: u64, to: u64, max_bytes: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut total = 0usize;
        for h in from.max(1)..=to {
            match self.committed_block(Height(h)) {
                Ok(Some(block)) => {
                    let bytes = codec::encode(&block);
                    total += bytes.len();
                    if total > max_bytes && !out.is_empty() {
                        break;
                    }
                    out.push(bytes);
                }
                Ok(None) => break,
                Err(e) => {
                    // Corruption is the operator's problem; the peer asks someone else.
                    tracing::error!(height = h, %e, "cannot read a block for a peer");
                    break;
                }
            }
        }
        out
    }
}

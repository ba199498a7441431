//! A validator that never sends anything: it receives, but its votes and proposals never leave
//! it, and it serves no blocks. To the others it is a crash from the start that never recovers.

use ledger_core::consensus::ConsensusMessage;

use super::{Me, Strategy};
use crate::sim::Ctx;

#[derive(Debug)]
pub struct Silent;

impl Strategy for Silent {
    fn on_broadcast(&mut self, _me: &Me<'_>, _ctx: &mut Ctx<'_>, _msg: ConsensusMessage) {}

    fn serves_sync(&self) -> bool {
        false
    }
}

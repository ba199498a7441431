//! ledger-core integration tests: one binary, one module per area.
//!
//! Randomized tests take their seed from the environment (`PROPTEST_SEED`-style variables named in
//! each module, `SIM_SEED` / `SIM_SEEDS` for the simulator) and print it on failure.

mod batch_cache_review;
mod consensus_steps;
mod engine;
mod engine_limits;
mod genesis_errors;
mod ledger_props;
mod light;
mod light_review;
mod sim;
mod speccheck;
mod state_review;
mod wire_vectors;
mod zip215;
mod zip215_review;

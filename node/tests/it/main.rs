//! The node's one integration test binary.

mod api;
mod bad_peer;
mod batch_review;
mod browser;
mod common;
mod crash;
mod e2e;
mod explorer_browser;
mod explorer_verify;
mod http_limits;
mod lying_node;
mod lying_proxy;
mod multihost;
mod netns;
mod proofs;
mod proofs_review;
mod resolv;
mod rogue;
mod store_replay;

//! Router-level unit tests live in the integration binary (`tests/it`), which starts a real node.

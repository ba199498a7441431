//! Non-vacuity tests.

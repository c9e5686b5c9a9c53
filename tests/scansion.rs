//! Plays the scansion conversation scripts against Perch.
//!
//! `cargo test --test scansion` runs the runner's own unit tests and
//! `scansion_scripts`, which plays `tests/scansion/*.scs` (all must pass) and
//! the shared corpus (those in `tests/scansion/shared-must-pass.txt` must
//! pass). See `scansion_runner/mod.rs` for the environment variables.

/// The runner's clients log in with the shared test client.
mod common;
mod scansion_runner;

#[test]
fn scansion_scripts() {
    if let Err(message) = scansion_runner::run_suites() {
        panic!("{message}");
    }
}

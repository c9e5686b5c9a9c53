//! Integration tests of the `perch` command-line binary: argument parsing,
//! `perch check`, `perch user …`, `perch archive …` and `perch upload …`
//! with and without a running server (the admin socket), `perch run`
//! start-up failures, signals and shutdown; and the documentation kept
//! true to the binary (`docs`: snippets, configuration keys, man page).
//!
//! Every test runs the real binary (`CARGO_BIN_EXE_perch`) in its own
//! temporary directory with an explicit `--config` whose `data_dir` lies
//! inside it, with `PERCH_CONFIG`, `CONFIGURATION_DIRECTORY` and
//! `STATE_DIRECTORY` cleared, and with listeners on port 0 unless a test
//! needs a fixed port (the port-conflict test picks a free one; the
//! no-configuration test uses the defaults 5222/5223 and accepts either
//! outcome). Every wait is bounded; a child still running at the end of a
//! test is killed.

mod announce;
mod archive;
mod args_and_check;
#[path = "../common/mod.rs"]
mod common;
mod docs;
mod first_run;
mod harness;
mod invite;
mod log_flood;
mod run;
mod upload;
mod users;

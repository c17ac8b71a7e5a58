//! curator: scheduled metadata-refresh jobs for a comic, manga and book library, declared as
//! YAML files in a watched `jobs.d/` directory and reconciled into a database.
//!
//! Data flows one way: `spec` loads job files, `validate` checks them, `reconcile` syncs them
//! into the `store`, `schedule` fires them, `run` executes them against a `provider`. `serve`
//! wires these together in one process; `cli` is the command line over all of them.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod init;
pub mod provider;
pub mod reconcile;
pub mod run;
pub mod schedule;
pub mod serve;
pub mod spec;
pub mod store;
pub mod validate;
pub mod watch;
pub mod web;
pub mod webhook;

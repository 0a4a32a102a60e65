//! essbot: pre-checks the ESS dossiers of Démarches Simplifiées against the national cahier des
//! charges, writes the result back as private annotations, and tracks every financing milestone.
//!
//! # Layout
//! - [`config`]: the TOML file and environment, validated into [`config::Settings`].
//! - [`ds`]: the DS GraphQL client and the [`ds::model::Dossier`] it produces.
//! - [`rules`]: the rulebook, pure functions from a dossier to findings.
//! - [`milestones`]: the financing schedule, a pure function of events and today.
//! - [`store`]: every table essbot keeps, in SQLite or PostgreSQL; the only module that speaks
//!   SQL, and the one that decides which of several instances acts.
//! - [`clock`]: time, injected.
//!
//! The DS sandbox that tests, benchmarks and `essbot demo` run against is the `ds-sandbox`
//! crate (`sandbox/`): it shares no code with the client, so the client is tested against an
//! independent implementation of the API.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod build;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod cycle;
pub mod daemon;
pub mod demo;
pub mod ds;
pub mod ledger;
pub mod lock;
pub mod metrics;
pub mod milestones;
pub mod precheck;
pub mod rules;
pub mod schedule;
pub mod service;
pub mod status;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod writeback;

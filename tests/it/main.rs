//! Integration tests: one binary, one module per area.

mod alerts;
mod cli;
mod daemon;
mod ds_client;
mod graphql_documents;
mod helpers;
mod ledger;
mod rulebook;
mod service;
mod store;
mod sync;
mod writeback;

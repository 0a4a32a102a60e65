//! Integration tests: one binary, one module per area.

#[macro_use]
mod helpers;

mod alerts;
mod cli;
mod corpus;
mod daemon;
mod ds_client;
mod faults;
mod forms;
mod graphql_documents;
mod instances;
mod ledger;
mod pg;
mod rulebook;
mod service;
mod store;
mod sync;
mod token;
mod writeback;

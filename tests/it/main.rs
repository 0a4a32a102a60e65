//! Integration tests: one binary, one module per area.

mod alerts;
mod cli;
mod corpus;
mod daemon;
mod ds_client;
mod faults;
mod forms;
mod graphql_documents;
mod helpers;
mod ledger;
mod rulebook;
mod service;
mod store;
mod sync;
mod token;
mod writeback;

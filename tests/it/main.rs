//! Integration tests: one binary, one module per area.

mod alerts;
mod graphql_documents;

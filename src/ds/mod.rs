//! The Démarches Simplifiées GraphQL client and the dossier model it produces.
//!
//! - [`DsClient`]: the only way essbot talks to DS. One instance (cloned freely) per process,
//!   so that the rate budget and the request counters cover every démarche.
//! - [`model`]: the dossier as the rest of essbot sees it, whichever operation fetched it.
//! - [`decode_dossier`], [`decode_dossier_text`]: read a dossier node, from DS or from a stored
//!   snapshot.
//! - [`ops`]: the graphql_client types generated from `graphql/*.graphql`.
//!
//! Errors: [`ApiError`] when a call fails (its `Display` is the French text shown to staff),
//! [`DecodeError`] when one dossier of an otherwise good page cannot be read.

mod client;
mod convert;
mod error;
pub mod model;
pub mod ops;

pub use client::{
    AnnotationValue, AnnotationWrite, DeletedPage, DossiersPage, DossiersPageText, DsClient,
    FetchedDossier, MutationOutcome, RequestStats, annotation_key,
};
pub use convert::{decode_dossier, decode_dossier_text};
pub use error::{ApiError, DecodeError, Subject};

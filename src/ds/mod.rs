//! The Démarches Simplifiées GraphQL client and the dossier model it produces.

pub mod model;

//! Shared test helpers: a temporary SQLite store and a [`TestEnv`] with the DS sandbox.
//!
//! Everything lives in a temporary folder removed when the value is dropped, and the sandbox
//! listens on port 0, so tests run in parallel without sharing anything.

use essbot::store::Store;
use tempfile::TempDir;

/// A fresh store in a temporary folder (`<dir>/essbot.db`), migrations applied. Keep the
/// folder alive as long as the store.
pub async fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let store = Store::open_file(&dir.path().join("essbot.db"))
        .await
        .expect("open the store");
    (dir, store)
}

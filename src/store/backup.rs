//! Online backup of the SQLite file, for `essbot db backup`.

use std::path::Path;

use super::{Store, StoreError};

impl Store {
    /// Writes a transactionally consistent copy of the database to `path` while other
    /// connections (a running daemon) go on reading and writing: SQLite's `VACUUM INTO`, which
    /// reads the database in one transaction and writes a compact copy.
    ///
    /// # Errors
    /// A database failure, or `path` exists already or cannot be written.
    pub async fn backup_to(&self, path: &Path) -> Result<(), StoreError> {
        sqlx::query("VACUUM INTO $1")
            .bind(path.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

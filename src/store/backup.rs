//! `essbot db backup`: an online copy of a SQLite database. PostgreSQL databases are backed up
//! with the server's own tools (`pg_dump`), which the command runs or explains.

use std::path::Path;

use super::{Backend, Store, StoreError};

impl Store {
    /// Writes a transactionally consistent copy of the SQLite database to `path` while other
    /// connections (a running daemon) go on reading and writing: SQLite's `VACUUM INTO`, which
    /// reads the database in one transaction and writes a compact copy.
    ///
    /// # Errors
    /// A database failure, or `path` exists already or cannot be written. On PostgreSQL,
    /// [`StoreError::Copy`]: `pg_dump` is the tool (see `essbot db backup`).
    pub async fn backup_to(&self, path: &Path) -> Result<(), StoreError> {
        if self.backend() == Backend::Postgres {
            return Err(StoreError::Copy(
                "a PostgreSQL database is backed up with pg_dump, not by essbot".into(),
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

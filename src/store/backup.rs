//! `essbot db backup`: an online, consistent copy of the database while essbot runs. SQLite is
//! copied by SQLite itself (`VACUUM INTO`); a PostgreSQL database is dumped by the server's own
//! tool, `pg_dump`, which this runs when the machine has it and otherwise names.

use std::path::Path;

use super::{DatabaseUrl, Store, StoreError};

/// What [`Store::backup_to`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backup {
    /// A SQLite database file: put it in place of the database to restore.
    SqliteFile,
    /// A `pg_dump --format=custom` archive: restore it with `pg_restore`.
    PgDump,
}

impl Store {
    /// Writes a transactionally consistent copy of the database to `path` while other
    /// connections (a running daemon) go on reading and writing. SQLite: `VACUUM INTO`, which
    /// reads the database in one transaction and writes a compact copy. PostgreSQL:
    /// `pg_dump --format=custom`, one snapshot too, the password (if the URL has one) handed
    /// over in `PGPASSWORD`, never on the command line.
    ///
    /// The copy holds every applicant's data: it is created readable by its owner only (0600),
    /// whatever the caller's umask.
    ///
    /// # Errors
    /// A database failure, or `path` exists already or cannot be written; for PostgreSQL,
    /// [`StoreError::Backup`] when `pg_dump` is missing or fails, with what to do.
    pub async fn backup_to(&self, path: &Path) -> Result<Backup, StoreError> {
        // Created empty, owner-only, before anything is written into it (SQLite's VACUUM INTO
        // and pg_dump both write into an existing empty file and keep its mode).
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| {
                    StoreError::Backup(format!("cannot create {}: {e}", path.display()))
                })?;
        }
        let written = self.write_backup(path).await;
        if written.is_err() {
            // Nothing half-written left behind to refuse the next attempt.
            let _ = std::fs::remove_file(path);
        }
        written
    }

    async fn write_backup(&self, path: &Path) -> Result<Backup, StoreError> {
        let DatabaseUrl::Postgres { url } = &*self.url else {
            sqlx::query("VACUUM INTO $1")
                .bind(path.to_string_lossy().into_owned())
                .execute(&self.pool)
                .await?;
            return Ok(Backup::SqliteFile);
        };
        let mut shown = url.clone();
        let password = shown.password().map(percent_decode);
        let _ = shown.set_password(None);
        let example = format!(
            "pg_dump --format=custom --file={} '{}'",
            path.display(),
            self.url.redacted()
        );
        let mut command = tokio::process::Command::new("pg_dump");
        command
            .arg("--format=custom")
            .arg("--file")
            .arg(path)
            .arg("--dbname")
            .arg(shown.as_str())
            .kill_on_drop(true);
        if let Some(p) = password {
            command.env("PGPASSWORD", p);
        }
        let output = match command.output().await {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Backup(format!(
                    "the database is PostgreSQL and pg_dump is not installed here: install the \
                     PostgreSQL client (Debian: apt-get install postgresql-client, of the \
                     server's major version or later) and run `essbot db backup` again, or \
                     back it up where pg_dump is: {example}"
                )));
            }
            Err(e) => {
                return Err(StoreError::Backup(format!("cannot run pg_dump: {e}")));
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(StoreError::Backup(format!(
                "pg_dump failed ({}): {}",
                output.status,
                stderr.trim()
            )));
        }
        Ok(Backup::PgDump)
    }
}

/// `%XX` sequences of a URL's password decoded (`url` keeps them encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_percent_decoded() {
        assert_eq!(super::percent_decode("s3cr%40t%2F"), "s3cr@t/");
        assert_eq!(super::percent_decode("plain%"), "plain%");
    }
}

//! One `essbot run` per database: an exclusive advisory lock on a file beside it.
//!
//! Two daemons on one database would both write back the same findings and send the same
//! alerts, so the second refuses to start and names the first one's PID.
//!
//! The lock is `flock(2)` through std's [`File::try_lock`]. It belongs to the open file, not to
//! the process, so a second handle opened by the same process conflicts too (which is what the
//! tests use), and the kernel drops it when the file is closed, including when essbot crashes or
//! is killed: there is never a stale lock to clean up. The lock file itself stays on disk on
//! purpose (deleting it would let a third process lock a fresh file while the second still holds
//! the old one); it holds the PID of its current holder, for the message.
//!
//! Only SQLite databases are files. For PostgreSQL there is no file to lock, and
//! [`lock_path_for_database`] returns `None`: instances share the database and one of them is
//! active at a time through an advisory lock (`store::leadership`).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the instance lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock: a second daemon on the same database.
    #[error(
        "another essbot is already running on this database ({}lock file {})",
        pid.map(|p| format!("PID {p}, ")).unwrap_or_default(),
        path.display()
    )]
    Held { path: PathBuf, pid: Option<u32> },
    /// The lock file could not be opened or locked (permissions, missing directory).
    #[error(
        "cannot create or lock {}: {source}{}",
        path.display(),
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            "; the database's folder belongs to the essbot user: run essbot as that user (the service does, or sudo -u essbot essbot …)"
        } else if source.kind() == std::io::ErrorKind::NotFound {
            "; the database's folder does not exist: create it, or check database.url"
        } else {
            ""
        }
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held instance lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct InstanceLock {
    path: PathBuf,
    // Held for its lock; closed (and so unlocked) on drop.
    _file: File,
}

impl InstanceLock {
    /// Takes the lock on `path` without waiting, and records our PID in it.
    ///
    /// # Errors
    /// [`LockError::Held`] when another handle holds it (with that process's PID when it could
    /// be read), [`LockError::Io`] when the file cannot be opened.
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        // Never truncate on open: the file holds the current holder's PID.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(LockError::Held {
                    path: path.to_owned(),
                    pid,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self {
            path: path.to_owned(),
            _file: file,
        })
    }

    /// Takes the lock for the database at `url`; `Ok(None)` when the database is not a file
    /// (PostgreSQL, in-memory SQLite), where a file lock means nothing.
    ///
    /// # Errors
    /// As [`InstanceLock::acquire`].
    pub fn for_database(url: &str) -> Result<Option<Self>, LockError> {
        lock_path_for_database(url)
            .map(|p| Self::acquire(&p))
            .transpose()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file of a SQLite database URL: `<database file>.lock` beside it (so in
/// `StateDirectory=`, which the unit makes writable). `None` for other databases.
pub fn lock_path_for_database(url: &str) -> Option<PathBuf> {
    let url = crate::store::DatabaseUrl::parse(url).ok()?;
    let mut lock = url.sqlite_path()?.as_os_str().to_owned();
    lock.push(".lock");
    Some(PathBuf::from(lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("essbot.db.lock");
        let first = InstanceLock::acquire(&path).unwrap();
        assert_eq!(first.path(), path);
        let err = InstanceLock::acquire(&path).unwrap_err();
        match &err {
            LockError::Held { path: p, pid } => {
                assert_eq!(p, &path);
                assert_eq!(*pid, Some(std::process::id()));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains(&format!("PID {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("already running"), "{message}");
    }

    #[test]
    fn the_lock_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("essbot.db.lock");
        let first = InstanceLock::acquire(&path).unwrap();
        drop(first);
        let second = InstanceLock::acquire(&path).unwrap();
        // The file now names the new holder, written over the old content.
        let text = std::fs::read_to_string(second.path()).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
    }

    #[test]
    fn a_missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = InstanceLock::acquire(&dir.path().join("nope/essbot.db.lock")).unwrap_err();
        assert!(matches!(err, LockError::Io { .. }), "{err:?}");
    }

    #[test]
    fn lock_paths_of_database_urls() {
        for (url, expected) in [
            (
                "sqlite:///var/lib/essbot/essbot.db",
                Some("/var/lib/essbot/essbot.db.lock"),
            ),
            ("sqlite://essbot.db?mode=rwc", Some("essbot.db.lock")),
            ("sqlite:data/essbot.db", Some("data/essbot.db.lock")),
            ("sqlite::memory:", None),
            ("sqlite://:memory:", None),
            ("postgres://essbot@localhost/essbot", None),
        ] {
            assert_eq!(
                lock_path_for_database(url),
                expected.map(PathBuf::from),
                "{url}"
            );
        }
    }

    #[test]
    fn for_database_locks_beside_the_file_and_ignores_servers() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/essbot.db", dir.path().display());
        let lock = InstanceLock::for_database(&url).unwrap().unwrap();
        assert_eq!(lock.path(), dir.path().join("essbot.db.lock"));
        assert!(matches!(
            InstanceLock::for_database(&url),
            Err(LockError::Held { .. })
        ));
        assert!(
            InstanceLock::for_database("postgres://localhost/essbot")
                .unwrap()
                .is_none()
        );
    }
}

//! A PostgreSQL server for the tests, and a throw-away database per test.
//!
//! The server is `ESSBOT_TEST_POSTGRES_URL` when set (a URL whose user may create databases,
//! e.g. `postgres://postgres@127.0.0.1:5432/postgres`); otherwise this process starts its own
//! cluster with the machine's `initdb` and `postgres` (from `PATH` or Debian's
//! `/usr/lib/postgresql/*/bin`) in a temporary folder, on a free loopback port, as the
//! `postgres` user when the tests run as root (initdb refuses root). A shell that watches this
//! process's end stops that cluster and removes its folder when the test binary exits, however
//! it exits.
//!
//! Each test gets a database of its own (`essbot_t_<pid>_<n>`), dropped when the test ends.
//! Without a server, a PostgreSQL test says `SKIPPED` and returns, except with `CI=true`,
//! where it fails: CI never skips one silently (`.ci/run` installs PostgreSQL).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

/// The environment variable naming a server to use.
pub const URL_ENV: &str = "ESSBOT_TEST_POSTGRES_URL";

/// The server the tests use: its administrative URL (database `postgres`), or why there is none.
fn server() -> &'static Result<url::Url, String> {
    static SERVER: OnceLock<Result<url::Url, String>> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var(URL_ENV) {
        Ok(url) if !url.trim().is_empty() => {
            url::Url::parse(url.trim()).map_err(|e| format!("{URL_ENV} is not a URL: {e}"))
        }
        _ => Cluster::start().map(|c| {
            let url = c.url.clone();
            // Kept for the life of the process: its watcher stops it at exit.
            *CLUSTER.lock().unwrap() = Some(c);
            url
        }),
    })
}

static CLUSTER: Mutex<Option<Cluster>> = Mutex::new(None);

/// A throw-away database; dropped (with `WITH (FORCE)`, closing what is still connected) when
/// this value is.
pub struct PgDatabase {
    pub url: String,
    name: String,
    admin: url::Url,
}

impl PgDatabase {
    /// A new, empty database on the test server; `None` (said plainly) when there is no
    /// server, which fails instead under `CI=true`.
    pub async fn create() -> Option<Self> {
        let admin = match server() {
            Ok(url) => url.clone(),
            Err(why) => {
                if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                    panic!(
                        "no PostgreSQL for the tests under CI ({why}): set {URL_ENV} or install \
                         PostgreSQL (initdb, postgres)"
                    );
                }
                eprintln!(
                    "SKIPPED: no PostgreSQL for this test ({why}); set {URL_ENV} or install \
                     PostgreSQL (Debian: apt-get install postgresql)"
                );
                return None;
            }
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "essbot_t_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = connect(&admin).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        let _ = conn.close().await;
        let mut url = admin.clone();
        url.set_path(&format!("/{name}"));
        Some(Self {
            url: url.to_string(),
            name,
            admin,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside a test's runtime: a thread of its own, with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(admin.as_str()).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

async fn connect(url: &url::Url) -> PgConnection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgConnection::connect(url.as_str()).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => {
                panic!("cannot connect to the test PostgreSQL server: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A cluster of this test process.
struct Cluster {
    url: url::Url,
    /// The CA of its TLS certificate (for 127.0.0.1), when `openssl` could make them.
    cert: Option<PathBuf>,
    /// The watcher shell; its stdin is this process's to close (at exit).
    _watcher: Child,
}

/// The CA to verify the test server's certificate against: the throw-away cluster's own (its
/// certificate is for 127.0.0.1); `None` for a server given by URL, or without `openssl`.
pub fn server_certificate() -> Option<PathBuf> {
    let _ = server();
    CLUSTER
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|c| c.cert.clone())
}

impl Cluster {
    fn start() -> Result<Self, String> {
        let bin = postgres_bin()
            .ok_or_else(|| "no initdb/postgres in PATH or /usr/lib/postgresql/*/bin".to_owned())?;
        let as_root = effective_uid() == Some(0);
        let dir = tempfile::Builder::new()
            .prefix("essbot-pg-")
            .tempdir()
            .map_err(|e| format!("temporary folder: {e}"))?
            .keep();
        let data = dir.join("data");
        if as_root {
            let (uid, gid) = passwd_ids("postgres").ok_or(
                "running as root and there is no `postgres` user to run the cluster as \
                 (initdb refuses root)",
            )?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let run = |program: &Path| {
            let mut c = if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            };
            c.current_dir(&dir);
            c
        };
        let out = run(&bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // TLS, as production servers have it, when openssl can make a certificate.
        let cert = self_signed_certificate(&dir, as_root);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        // The shell starts postgres, then waits for its stdin to close (this process ended),
        // stops the cluster and removes its folder.
        let script = format!(
            "\"$1\" -D \"$2\" -p {port} -k \"$3\" -c listen_addresses=127.0.0.1 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=300 {} >\"$3/log\" 2>&1 & pid=$!; \
             cat >/dev/null; kill -INT $pid; wait $pid; rm -rf \"$3\"",
            if cert.is_some() {
                "-c ssl=on -c ssl_cert_file=\"$3/server.crt\" -c ssl_key_file=\"$3/server.key\""
            } else {
                ""
            }
        );
        let mut watcher = run(Path::new("/bin/sh"))
            .args(["-c", &script, "essbot-pg"])
            .arg(bin.join("postgres"))
            .arg(&data)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting postgres: {e}"))?;
        if let Some(stdin) = watcher.stdin.as_mut() {
            let _ = stdin.flush();
        }
        let url = url::Url::parse(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
            .expect("a valid URL");
        // Wait until it accepts connections (the tests' runtime is not this thread's).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                return Err(format!("postgres did not start within 30 s: {log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            url,
            cert,
            _watcher: watcher,
        })
    }
}

/// A test CA (`ca.crt`, returned) and `server.crt`/`server.key` it signed for 127.0.0.1, in
/// `dir`, the key readable by the server only.
fn self_signed_certificate(dir: &Path, as_root: bool) -> Option<PathBuf> {
    let (ca, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (crt, key, csr, ext) = (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("server.csr"),
        dir.join("server.ext"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .ok()?;
    let openssl = |args: &[&std::ffi::OsStr]| {
        Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let made = openssl(&[
        os("req"),
        os("-x509"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-days"),
        os("2"),
        os("-subj"),
        os("/CN=essbot test CA"),
        os("-keyout"),
        ca_key.as_os_str(),
        os("-out"),
        ca.as_os_str(),
    ]) && openssl(&[
        os("req"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-subj"),
        os("/CN=127.0.0.1"),
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        csr.as_os_str(),
    ]) && openssl(&[
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        ca.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-CAcreateserial"),
        os("-days"),
        os("2"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        crt.as_os_str(),
    ]);
    if !made {
        return None;
    }
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).ok()?;
    if as_root {
        let (uid, gid) = passwd_ids("postgres")?;
        for f in [&crt, &key] {
            std::os::unix::fs::chown(f, Some(uid), Some(gid)).ok()?;
        }
    }
    Some(ca)
}

/// The folder holding `initdb` and `postgres`: `PATH` first, then the newest Debian version.
fn postgres_bin() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has(&dir) {
                return Some(dir);
            }
            // Debian links initdb into PATH but not postgres: follow the link.
            if let Ok(target) = std::fs::canonicalize(dir.join("initdb"))
                && let Some(parent) = target.parent()
                && has(parent)
            {
                return Some(parent.to_owned());
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| has(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// This process's effective user id (Linux), from `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The uid and gid of `user` in `/etc/passwd`.
fn passwd_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

//! A real PostgreSQL for tests: one server per test process, one fresh
//! database per test.
//!
//! [`test_database`] picks the server once per process:
//!
//! 1. `MUSTER_TEST_DATABASE_URL` when set (`postgres://user@host:port/db`,
//!    a password in the URL is taken apart and passed on separately): each
//!    test gets a new database on that server, dropped when the test ends.
//! 2. Otherwise a **private cluster** from the Debian binaries (`initdb`,
//!    `pg_ctl`, found on `PATH` or in `/usr/lib/postgresql/*/bin`): a temp
//!    directory holds the data and the unix socket (no TCP port at all),
//!    `fsync` is off (a test cluster need not survive a power cut). `initdb`
//!    refuses to run as root, so as root the cluster belongs to the
//!    `postgres` user (which Debian's package creates; `nobody` otherwise)
//!    and runs through `runuser`.
//! 3. Neither: an error saying what is missing. Tests fail, never skip.
//!
//! The private cluster is stopped (`pg_ctl stop -m immediate`) and its
//! directory removed by a watchdog started with it: a small `sh` in its own
//! process group that waits for the test process to end (`tail --pid`), so
//! the cluster goes away however the process ends — success, panic, abort
//! or Ctrl-C — about a second after it does. (A `Drop` of a static never
//! runs, and a reference count would stop and restart the cluster between
//! tests that happen not to overlap.)

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What can stop the harness from providing a database.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PostgresError {
    #[error(
        "no PostgreSQL for the tests: MUSTER_TEST_DATABASE_URL is not set and `initdb` was found neither on PATH nor in /usr/lib/postgresql/*/bin; install Debian's `postgresql` package (`apt-get install postgresql`) or point MUSTER_TEST_DATABASE_URL at a server"
    )]
    NoServer,
    #[error("starting the private PostgreSQL cluster: `{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("the test PostgreSQL server at {server}: {detail}")]
    Server { server: String, detail: String },
}

/// A fresh, empty database for one test. Dropped at the end of the test
/// (`DROP DATABASE … WITH (FORCE)`), so a shared server does not fill up.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    password: Option<String>,
    admin: String,
}

impl TestDatabase {
    /// `postgresql://user@host/name`, without a password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The password, when the server needs one (from
    /// `MUSTER_TEST_DATABASE_URL`); the private cluster trusts its socket.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The database's name (`test_<pid>_<n>`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = admin_client(&self.admin, self.password.as_deref()) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The server this process's tests use, chosen once.
struct Server {
    /// URL (no password) of the server's `postgres` database, and the
    /// prefix every test database's URL is made from.
    base: UrlParts,
    password: Option<String>,
}

static SERVER: OnceLock<Result<Server, PostgresError>> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A new empty database on the test server (see the module doc).
pub fn test_database() -> Result<TestDatabase, PostgresError> {
    let server = SERVER.get_or_init(start).as_ref().map_err(Clone::clone)?;
    let name = format!(
        "test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let admin = server.base.with_db("postgres");
    let mut c = admin_client(&admin, server.password.as_deref())?;
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .map_err(|e| PostgresError::Server {
            server: admin.clone(),
            detail: format!("CREATE DATABASE {name}: {e}"),
        })?;
    Ok(TestDatabase {
        url: server.base.with_db(&name),
        name,
        password: server.password.clone(),
        admin,
    })
}

fn admin_client(url: &str, password: Option<&str>) -> Result<postgres::Client, PostgresError> {
    let mut config: postgres::Config = url.parse().map_err(|e| PostgresError::Server {
        server: url.into(),
        detail: format!("not a PostgreSQL URL: {e}"),
    })?;
    if let Some(p) = password {
        config.password(p);
    }
    config
        .connect(postgres::NoTls)
        .map_err(|e| PostgresError::Server {
            server: url.into(),
            detail: e.to_string(),
        })
}

fn start() -> Result<Server, PostgresError> {
    match std::env::var("MUSTER_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let (base, password) = UrlParts::parse(&url).ok_or_else(|| PostgresError::Server {
                server: "MUSTER_TEST_DATABASE_URL".into(),
                detail: "expected postgres://user[:password]@host[:port]/database".into(),
            })?;
            Ok(Server { base, password })
        }
        _ => start_private(),
    }
}

/// A URL cut where the database name goes: `scheme://user@host` + `/db` +
/// `?query`.
struct UrlParts {
    prefix: String,
    query: String,
}

impl UrlParts {
    /// Splits `url`, taking out a password (returned apart).
    fn parse(url: &str) -> Option<(UrlParts, Option<String>)> {
        let (scheme, rest) = url.split_once("://")?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, format!("?{q}")),
            None => (rest, String::new()),
        };
        let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
        let (userinfo, host) = authority.rsplit_once('@').unwrap_or(("", authority));
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p.to_string())),
            None => (userinfo, None),
        };
        let at = if user.is_empty() { "" } else { "@" };
        Some((
            UrlParts {
                prefix: format!("{scheme}://{user}{at}{host}"),
                query,
            },
            password,
        ))
    }

    fn with_db(&self, db: &str) -> String {
        format!("{}/{db}{}", self.prefix, self.query)
    }
}

/// Where `initdb` and `pg_ctl` are: `PATH` first, then Debian's layout
/// (highest version).
fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("initdb"))
            .collect::<Vec<_>>()
    });
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/initdb"))
        .collect();
    debian.sort_by_key(|p| {
        let version = p
            .iter()
            .rev()
            .nth(2)
            .and_then(|v| v.to_str()?.parse::<u32>().ok());
        std::cmp::Reverse(version)
    });
    on_path
        .chain(debian)
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
}

/// Who runs the cluster: this user, or (as root) `postgres` / `nobody`.
enum RunAs {
    Me,
    User { name: String, uid: u32, gid: u32 },
}

fn run_as() -> Result<RunAs, PostgresError> {
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !root {
        return Ok(RunAs::Me);
    }
    let id = |name: &str, flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    ["postgres", "nobody"]
        .into_iter()
        .find_map(|name| {
            Some(RunAs::User {
                name: name.into(),
                uid: id(name, "-u")?,
                gid: id(name, "-g")?,
            })
        })
        .ok_or_else(|| PostgresError::Command {
            command: "id -u postgres".into(),
            detail: "running as root, and neither a `postgres` nor a `nobody` user exists to run initdb as (initdb refuses root)".into(),
        })
}

impl RunAs {
    /// `program args…`, through `runuser` when running as another user.
    fn command(&self, program: &Path) -> Command {
        match self {
            RunAs::Me => Command::new(program),
            RunAs::User { name, .. } => {
                let mut c = Command::new("runuser");
                c.args(["-u", name, "--"]).arg(program);
                c
            }
        }
    }

    /// The same, as a shell command line for the watchdog.
    fn shell(&self, program: &Path) -> String {
        match self {
            RunAs::Me => format!("'{}'", program.display()),
            RunAs::User { name, .. } => format!("runuser -u {name} -- '{}'", program.display()),
        }
    }
}

fn run(mut command: Command, what: &str) -> Result<(), PostgresError> {
    let out = command.output().map_err(|e| PostgresError::Command {
        command: what.into(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(PostgresError::Command {
        command: what.into(),
        detail: format!(
            "{}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
    })
}

fn start_private() -> Result<Server, PostgresError> {
    let bin = find_bin().ok_or(PostgresError::NoServer)?;
    let user = run_as()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let root = std::env::temp_dir().join(format!("muster-pg-{}-{nanos:x}", std::process::id()));
    let io = |e: std::io::Error| PostgresError::Command {
        command: format!("mkdir {}", root.display()),
        detail: e.to_string(),
    };
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&root)
        .map_err(io)?;
    if let RunAs::User { uid, gid, .. } = &user {
        std::os::unix::fs::chown(&root, Some(*uid), Some(*gid)).map_err(io)?;
    }
    let data = root.join("data");
    let mut initdb = user.command(&bin.join("initdb"));
    initdb
        .args([
            "-A",
            "trust",
            "-U",
            "muster",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .current_dir(&root);
    run(initdb, "initdb")?;
    let mut pg_ctl = user.command(&bin.join("pg_ctl"));
    pg_ctl
        .args(["-w", "-t", "60", "-D"])
        .arg(&data)
        .arg("-l")
        .arg(root.join("server.log"))
        .arg("-o")
        .arg(format!(
            "-k {} -c listen_addresses='' -F -c max_connections=200",
            root.display()
        ))
        .arg("start")
        .current_dir(&root)
        .stdin(Stdio::null());
    let started = run(pg_ctl, "pg_ctl start");
    // The watchdog goes first, even if the start failed half-way.
    watchdog(&user, &bin, &root, &data)?;
    started?;
    let socket = root.display().to_string().replace('/', "%2F");
    Ok(Server {
        base: UrlParts {
            prefix: format!("postgresql://muster@{socket}"),
            query: String::new(),
        },
        password: None,
    })
}

/// Stops the cluster and removes its directory once this process has
/// ended (see the module doc).
fn watchdog(user: &RunAs, bin: &Path, root: &Path, data: &Path) -> Result<(), PostgresError> {
    use std::os::unix::process::CommandExt;
    let script = format!(
        "tail --pid={pid} -f /dev/null; {pg_ctl} -D '{data}' -m immediate -w stop; rm -rf '{root}'",
        pid = std::process::id(),
        pg_ctl = user.shell(&bin.join("pg_ctl")),
        data = data.display(),
        root = root.display(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C to the tests does not kill it.
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| PostgresError::Command {
            command: "sh (cluster watchdog)".into(),
            detail: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::UrlParts;

    #[test]
    fn a_url_is_cut_where_the_database_goes_and_loses_its_password() {
        let (parts, password) =
            UrlParts::parse("postgres://ci:s3cret@db.local:5433/muster?sslmode=disable").unwrap();
        assert_eq!(password.as_deref(), Some("s3cret"));
        assert_eq!(
            parts.with_db("test_1_0"),
            "postgres://ci@db.local:5433/test_1_0?sslmode=disable"
        );
        let (parts, password) = UrlParts::parse("postgresql://localhost").unwrap();
        assert_eq!(password, None);
        assert_eq!(parts.with_db("x"), "postgresql://localhost/x");
    }
}

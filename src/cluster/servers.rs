//! Throwaway PostgreSQL and NATS servers for tests and `dccgw demo --instances 3`: each started
//! from the binaries on the machine (`initdb`/`pg_ctl` from the PATH or
//! `/usr/lib/postgresql/*/bin`, `nats-server` from the PATH) on a free loopback port, with its
//! files in a directory the caller gives, and stopped when dropped. Never a shared, pre-running
//! server.
//!
//! `initdb` refuses to run as root; as root both PostgreSQL tools run as the `postgres` user the
//! Debian package creates (through `runuser`), and the data directory is given to that user.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections once started; past it the start fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{binary} is not installed (Debian package {package})")]
    Missing {
        binary: &'static str,
        package: &'static str,
    },
    #[error("running as root, but there is no `postgres` user to run PostgreSQL as")]
    NoPostgresUser,
    #[error("{what} failed: {detail}")]
    Failed { what: &'static str, detail: String },
    #[error("{what} did not accept connections within {START_TIMEOUT:?}")]
    Timeout { what: &'static str },
    #[error("preparing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A PostgreSQL server of our own: its data directory (which holds its unix socket too) and its
/// loopback port; stopped (immediately) when dropped.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    run_as: Option<Account>,
}

/// A user account other than ours that a server runs as.
#[derive(Clone, Copy, Debug)]
struct Account {
    uid: u32,
    gid: u32,
}

/// How the throwaway PostgreSQL keeps its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` on, as in production: a commit is on disk when it returns.
    Durable,
    /// `fsync` and synchronous commit off: fast, for tests that do not crash the machine.
    Scratch,
}

impl Postgres {
    /// `initdb` into `dir/pgdata` (a fresh directory) and `pg_ctl start` on a free loopback port,
    /// trusting local connections (user `dccgw`, database `postgres`).
    pub fn start(dir: &Path, durability: Durability) -> Result<Self, ServerError> {
        // The tools run in the data directory: a relative path (the demo's `demo-data`) would
        // be taken from there.
        let dir = &std::path::absolute(dir).map_err(|source| ServerError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let bin = postgres_bin()?;
        let run_as = if running_as_root(dir)? {
            Some(postgres_account()?)
        } else {
            None
        };
        let data = dir.join("pgdata");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ServerError::Io { path, source }
        };
        std::fs::create_dir_all(&data).map_err(io(&data))?;
        if let Some(account) = run_as {
            // The server's account must reach the directory and own the data in it.
            let open = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(dir, open).map_err(io(dir))?;
            std::os::unix::fs::chown(&data, Some(account.uid), Some(account.gid))
                .map_err(io(&data))?;
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            .map_err(io(&data))?;
        let server = Self {
            bin,
            data,
            port: free_port()?,
            run_as,
        };
        server.run(
            "initdb",
            &["-D", path_str(&server.data), "-U", "dccgw", "-A", "trust"],
            &["-E", "UTF8", "--no-sync", "--no-instructions"],
        )?;
        server.pg_ctl_start(durability)?;
        Ok(server)
    }

    /// The connection string (key-value form, over the loopback port).
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=dccgw dbname=postgres",
            self.port
        )
    }

    /// The data directory, which holds the unix socket as well.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (`pg_ctl stop -m fast`) and waits for it.
    pub fn stop(&self) -> Result<(), ServerError> {
        self.run(
            "pg_ctl",
            &["-D", path_str(&self.data)],
            &["-m", "fast", "-w", "stop"],
        )
    }

    /// Starts it again after a [`Postgres::stop`], on the same port.
    pub fn restart(&self) -> Result<(), ServerError> {
        self.pg_ctl_start(Durability::Durable)
    }

    fn pg_ctl_start(&self, durability: Durability) -> Result<(), ServerError> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            path_str(&self.data)
        );
        if durability == Durability::Scratch {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let log = self.data.join("server.log");
        self.run(
            "pg_ctl",
            &["-D", path_str(&self.data), "-l", path_str(&log)],
            &["-o", &options, "-w", "-t", "30", "start"],
        )
    }

    /// Runs one of the server's tools (as its account when we are root) and waits for it.
    fn run(&self, tool: &'static str, a: &[&str], b: &[&str]) -> Result<(), ServerError> {
        let program = self.bin.join(tool);
        let mut command = match self.run_as {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let output = command
            .args(a)
            .args(b)
            .stdin(Stdio::null())
            .current_dir(&self.data)
            .output()
            .map_err(|e| ServerError::Failed {
                what: tool,
                detail: e.to_string(),
            })?;
        if output.status.success() {
            return Ok(());
        }
        Err(ServerError::Failed {
            what: tool,
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = path_str(&self.data).to_owned();
        let _ = self.run("pg_ctl", &["-D", &data], &["-m", "immediate", "-w", "stop"]);
    }
}

/// A `nats-server -js` of our own, its JetStream files under the given directory; killed when
/// dropped.
pub struct Nats {
    child: Option<Child>,
    binary: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    port: u16,
    store: PathBuf,
    sync_always: bool,
}

/// When the throwaway server's JetStream file store syncs to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatsSync {
    /// `sync_interval: always`: a message is on disk before its publish is acknowledged (as
    /// production runs it, docs/cluster.md). Servers before 2.10 have no such setting and run
    /// with their fixed interval instead ([`Nats::syncs_always`] says which).
    Always,
    /// The server's default (every two minutes).
    Default,
}

impl Nats {
    /// Starts `nats-server -js` on a free loopback port with its store in `dir/jetstream`,
    /// syncing every write where the server can ([`NatsSync::Always`]), and waits until it
    /// accepts connections.
    pub fn start(dir: &Path) -> Result<Self, ServerError> {
        Self::start_with(dir, NatsSync::Always)
    }

    /// As [`Nats::start`], with the sync setting given. The binary is `$DCCGW_NATS_SERVER` when
    /// set (to measure another release), else `nats-server` from the PATH.
    pub fn start_with(dir: &Path, sync: NatsSync) -> Result<Self, ServerError> {
        let binary = std::env::var_os("DCCGW_NATS_SERVER")
            .map(PathBuf::from)
            .or_else(|| which("nats-server"))
            .ok_or(ServerError::Missing {
                binary: "nats-server",
                package: "nats-server",
            })?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ServerError::Io { path, source }
        };
        let store = dir.join("jetstream");
        std::fs::create_dir_all(&store).map_err(io(&store))?;
        let port = free_port()?;
        let sync_always = sync == NatsSync::Always && nats_has_sync_interval(&binary);
        let config = dir.join("nats-server.conf");
        std::fs::write(&config, nats_config(port, &store, sync_always)).map_err(io(&config))?;
        let mut nats = Self {
            child: None,
            binary,
            config,
            dir: dir.to_owned(),
            port,
            store,
            sync_always,
        };
        nats.restart()?;
        Ok(nats)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process ID (0 while stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Where JetStream keeps its streams.
    pub fn store_dir(&self) -> &Path {
        &self.store
    }

    /// Whether the server syncs every write (`sync_interval: always`).
    pub fn syncs_always(&self) -> bool {
        self.sync_always
    }

    /// Kills the server (SIGKILL: what it had not written is lost, as in a crash of the process).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again, after a [`Nats::stop`]) on the same port with the same store, and waits
    /// until it accepts connections.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.stop();
        let log_path = self.dir.join("nats-server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| ServerError::Io {
                path: log_path,
                source,
            })?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| ServerError::Failed {
                what: "nats-server",
                detail: e.to_string(),
            })?;
        self.child = Some(child);
        wait_for_port(self.port, "nats-server")
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server's configuration: loopback only, JetStream on with its store in `store`.
fn nats_config(port: u16, store: &Path, sync_always: bool) -> String {
    let sync = if sync_always {
        "\n  sync_interval: always"
    } else {
        ""
    };
    format!(
        "listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: {store:?}{sync}\n}}\n",
        store = path_str(store)
    )
}

/// Whether `binary` knows `sync_interval` (nats-server 2.10 and later; Debian 12 has 2.9.10).
fn nats_has_sync_interval(binary: &Path) -> bool {
    let Ok(out) = Command::new(binary).arg("--version").output() else {
        return false;
    };
    // "nats-server: v2.9.10"
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.trim().rsplit('v').next().unwrap_or_default();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 10)
}

/// The directory of `initdb` and `pg_ctl`: the PATH's, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin() -> Result<PathBuf, ServerError> {
    let missing = ServerError::Missing {
        binary: "initdb",
        package: "postgresql",
    };
    if let Some(dir) = which("initdb").and_then(|p| std::fs::canonicalize(p).ok()) {
        if let Some(parent) = dir.parent() {
            return Ok(parent.to_owned());
        }
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").map_err(|_| missing)?;
    versions
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
        .ok_or(ServerError::Missing {
            binary: "initdb",
            package: "postgresql",
        })
}

/// `program` on the PATH, if it is there.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Whether this process runs as root (judged by the owner of a directory it has just made).
fn running_as_root(dir: &Path) -> Result<bool, ServerError> {
    std::fs::create_dir_all(dir).map_err(|source| ServerError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let probe = dir.join(".owner-probe");
    let made = std::fs::create_dir_all(&probe).and_then(|()| std::fs::metadata(&probe));
    let _ = std::fs::remove_dir(&probe);
    let meta = made.map_err(|source| ServerError::Io {
        path: probe,
        source,
    })?;
    Ok(meta.uid() == 0)
}

/// The `postgres` account, from `/etc/passwd`.
fn postgres_account() -> Result<Account, ServerError> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != "postgres" {
                return None;
            }
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some(Account { uid, gid })
        })
        .ok_or(ServerError::NoPostgresUser)
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> Result<u16, ServerError> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| ServerError::Failed {
            what: "finding a free port",
            detail: e.to_string(),
        })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| ServerError::Failed {
            what: "finding a free port",
            detail: e.to_string(),
        })
}

/// Waits until something accepts connections on the loopback `port`.
fn wait_for_port(port: u16, what: &'static str) -> Result<(), ServerError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    while start.elapsed() < START_TIMEOUT {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ServerError::Timeout { what })
}

fn path_str(path: &Path) -> &str {
    // Our own directories; a path that is not UTF-8 reaches the tool as an empty argument,
    // which then fails with its own message.
    path.to_str().unwrap_or_default()
}

//! `dccgw demo --instances N`: a throwaway PostgreSQL (`initdb` into `<dir>/cluster/`, made
//! anew each run) and `nats-server -js`, `dccgw cluster init` from the demo's files, then N
//! gateway processes (`dccgw serve`) sharing their state through PostgreSQL, beside the demo's
//! Receive Response Service, their outbox in JetStream. The request log (anti-replay marks,
//! pending commands, holds) is in PostgreSQL; each instance's other stores (ledgers, audit) are
//! still its own, under `<dir>/instance-K/`. With HAProxy installed, it runs
//! `deploy/haproxy/dccgw.cfg` on a free port in front of the instances (its files under
//! `<dir>/cluster/haproxy/`); without it the demo says so and the instances are reached directly.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::haproxy::{self, Backend, Haproxy};
use crate::cluster::servers::{self, Durability, Nats, Postgres, ServerError};
use crate::config::{Config, ConfigError};
use crate::tools::cluster_init::{self, InitError};

/// How long an instance may take to listen once started; past it the demo stops.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClusterDemoError {
    #[error("starting the demo's {0}")]
    Server(&'static str, #[source] ServerError),
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("loading {path}")]
    Config {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
    #[error("dccgw cluster init")]
    Init(#[source] InitError),
    #[error("starting instance {instance}")]
    Spawn {
        instance: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("instance {instance} did not listen within {START_TIMEOUT:?}; see {log}")]
    NotListening { instance: usize, log: PathBuf },
}

/// One running gateway process.
pub struct Instance {
    pub name: String,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub log: PathBuf,
    child: Child,
}

impl Instance {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The demo cluster: its servers and instances, all stopped when dropped (the instances with
/// SIGTERM, so they drain).
pub struct DemoCluster {
    pub postgres: Postgres,
    pub nats: Nats,
    pub instances: Vec<Instance>,
    /// The balancer in front of the instances, when HAProxy is installed.
    pub haproxy: Option<Haproxy>,
}

impl Drop for DemoCluster {
    fn drop(&mut self) {
        // The balancer first: no new sessions while the instances drain.
        self.haproxy = None;
        for instance in &mut self.instances {
            let _ = Command::new("kill")
                .args(["-TERM", &instance.child.id().to_string()])
                .status();
        }
        for instance in &mut self.instances {
            let _ = instance.child.wait();
        }
    }
}

/// Starts the servers, initialises the cluster from `config` (the demo's single-instance
/// configuration), and starts `count` instances of `exe` from copies of it.
pub async fn start(
    dir: &Path,
    config: &Path,
    exe: &Path,
    count: usize,
) -> Result<DemoCluster, ClusterDemoError> {
    // The instances' configurations live in `dir` and name their state directories from it:
    // relative, those would be taken from `dir` again.
    let dir = &std::path::absolute(dir).map_err(|source| ClusterDemoError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let home = dir.join("cluster");
    // A throwaway server: made anew each run.
    let _ = std::fs::remove_dir_all(&home);
    // The servers' tools run to completion: off the async workers.
    let (postgres, nats) = tokio::task::block_in_place(|| {
        let postgres = Postgres::start(&home, Durability::Durable)
            .map_err(|e| ClusterDemoError::Server("PostgreSQL", e))?;
        let nats = Nats::start(&home).map_err(|e| ClusterDemoError::Server("nats-server", e))?;
        Ok::<_, ClusterDemoError>((postgres, nats))
    })?;
    let base = std::fs::read_to_string(config).map_err(|source| ClusterDemoError::Write {
        path: config.to_owned(),
        source,
    })?;
    let mut paths = Vec::new();
    for k in 1..=count {
        paths.push(instance_config(dir, &base, k, &postgres, &nats)?);
    }
    let first = load(&paths[0].0)?;
    cluster_init::run(&first)
        .await
        .map_err(ClusterDemoError::Init)?;
    let mut cluster = DemoCluster {
        postgres,
        nats,
        instances: Vec::new(),
        haproxy: None,
    };
    for (k, (path, addr, admin_addr)) in paths.into_iter().enumerate() {
        let log = dir.join(format!("instance-{}.log", k + 1));
        let out = std::fs::File::create(&log).map_err(|source| ClusterDemoError::Write {
            path: log.clone(),
            source,
        })?;
        let child = Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .map_err(|source| ClusterDemoError::Spawn {
                instance: k + 1,
                source,
            })?;
        cluster.instances.push(Instance {
            name: format!("demo-{}", k + 1),
            addr,
            admin_addr,
            log,
            child,
        });
    }
    for (k, instance) in cluster.instances.iter().enumerate() {
        tokio::task::block_in_place(|| wait_listening(instance.admin_addr)).ok_or_else(|| {
            ClusterDemoError::NotListening {
                instance: k + 1,
                log: instance.log.clone(),
            }
        })?;
    }
    cluster.haproxy = start_haproxy(&home, &cluster.instances)?;
    Ok(cluster)
}

/// HAProxy on a free port in front of `instances`, or `None` when it is not installed.
fn start_haproxy(home: &Path, instances: &[Instance]) -> Result<Option<Haproxy>, ClusterDemoError> {
    if !haproxy::installed() {
        return Ok(None);
    }
    let dir = home.join("haproxy");
    std::fs::create_dir_all(&dir).map_err(|source| ClusterDemoError::Write {
        path: dir.clone(),
        source,
    })?;
    let port = servers::free_port().map_err(|e| ClusterDemoError::Server("free port", e))?;
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let backends: Vec<Backend> = instances
        .iter()
        .map(|i| Backend {
            addr: i.addr,
            admin_port: i.admin_addr.port(),
        })
        .collect();
    tokio::task::block_in_place(|| Haproxy::start(&dir, front, &backends))
        .map(Some)
        .map_err(|e| ClusterDemoError::Server("HAProxy", e))
}

/// Instance `k`'s configuration: the demo's, on free ports, with its own state directory and
/// the `[cluster]` section; returns its path and addresses.
fn instance_config(
    dir: &Path,
    base: &str,
    k: usize,
    postgres: &Postgres,
    nats: &Nats,
) -> Result<(PathBuf, SocketAddr, SocketAddr), ClusterDemoError> {
    let port = |what| servers::free_port().map_err(|e| ClusterDemoError::Server(what, e));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port("free port")?));
    let admin_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port("free port")?));
    let state = dir.join(format!("instance-{k}"));
    let mut text = String::new();
    for line in base.lines() {
        let line = match line.split_once(" = ").map(|(key, _)| key) {
            Some("addr") => format!("addr = \"{addr}\""),
            Some("admin_addr") => format!("admin_addr = \"{admin_addr}\""),
            Some("dir") if text.ends_with("[state]\n") => {
                format!("dir = \"{}\"", state.display())
            }
            _ => line.to_owned(),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str(&format!(
        "\n# Cluster mode: the registers and changes in PostgreSQL, shared with the other instances.\n\
         [cluster]\npostgres_url = \"{}\"\nnats_url = \"{}\"\ninstance = \"demo-{k}\"\n",
        postgres.url(),
        nats.url()
    ));
    let path = dir.join(format!("instance-{k}.toml"));
    std::fs::write(&path, text).map_err(|source| ClusterDemoError::Write {
        path: path.clone(),
        source,
    })?;
    Ok((path, addr, admin_addr))
}

fn load(path: &Path) -> Result<Config, ClusterDemoError> {
    Config::load(path, std::env::vars()).map_err(|source| ClusterDemoError::Config {
        path: path.to_owned(),
        source,
    })
}

/// Waits until something accepts connections at `addr` (an instance's admin listener, which
/// binds with its DUIS listener and, being plain HTTP, logs no refused handshake for a probe).
fn wait_listening(addr: SocketAddr) -> Option<()> {
    let start = Instant::now();
    while start.elapsed() < START_TIMEOUT {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// What the demo prints once everything is up.
pub fn banner(cluster: &DemoCluster, receiver: SocketAddr, dir: &Path) -> String {
    let mut out = String::from(
        "dccgw demo: a cluster of gateways sharing their state through PostgreSQL\n\n",
    );
    match &cluster.haproxy {
        Some(h) => out.push_str(&format!(
            "  HAProxy      https://localhost:{}  (pid {}, deploy/haproxy/dccgw.cfg, TCP mode)\n\n",
            h.addr().port(),
            h.pid()
        )),
        None => out.push_str(
            "  HAProxy is not installed (Debian package haproxy): no balancer; use the instances directly.\n\n",
        ),
    }
    for instance in &cluster.instances {
        out.push_str(&format!(
            "  {}  https://localhost:{}  (pid {}, admin http://{}, log {})\n",
            instance.name,
            instance.addr.port(),
            instance.pid(),
            instance.admin_addr,
            instance.log.display()
        ));
    }
    out.push_str(&format!(
        "\n  PostgreSQL   {}  (data {})\n  nats-server  {}  (pid {})\n  Receive Response Service  https://localhost:{}\n",
        cluster.postgres.url(),
        cluster.postgres.data_dir().display(),
        cluster.nats.url(),
        cluster.nats.pid(),
        receiver.port()
    ));
    out.push_str(&format!(
        "\nRegistration and User changes made through any instance's admin API are enforced by all\n\
         of them, and a request's counter is accepted by one of them at most. Pending commands\n\
         and holds are in PostgreSQL (an instance gone for 10 s has them claimed by another);\n\
         the outbox is JetStream's (any instance delivers any User's messages); ledgers and\n\
         audit are still each instance's own, under {}/instance-N/. Ctrl-C stops everything.\n",
        dir.display()
    ));
    out
}

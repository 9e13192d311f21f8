//! HAProxy (Debian `haproxy`) in front of gateway instances on this host, for the fault test
//! and `dccgw demo --instances N`: `deploy/haproxy/dccgw.cfg` itself (built into the binary, so
//! the balancer under test is the one we ship), its front address and its `server` lines
//! written for the instances given, run in the foreground and killed when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::servers::{which, ServerError};

/// The configuration we ship (`deploy/haproxy/dccgw.cfg`).
pub const DEPLOY_CONFIG: &str = include_str!("../../deploy/haproxy/dccgw.cfg");

/// How long HAProxy may take to listen once started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One instance behind the balancer: its DUIS (mTLS) address and its admin port (`/readyz`) on
/// the same host.
#[derive(Clone, Copy, Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    pub admin_port: u16,
}

/// A running HAProxy; killed when dropped.
pub struct Haproxy {
    child: Child,
    front: SocketAddr,
}

impl Haproxy {
    /// Writes the configuration for `backends` to `dir/haproxy.cfg` and starts `haproxy -db`
    /// on it (its log in `dir/haproxy.log`), listening on `front`; returns once it listens.
    pub fn start(dir: &Path, front: SocketAddr, backends: &[Backend]) -> Result<Self, ServerError> {
        let binary = binary().ok_or(ServerError::Missing {
            binary: "haproxy",
            package: "haproxy",
        })?;
        let io = |path: PathBuf| move |source| ServerError::Io { path, source };
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, config_for(front, backends)).map_err(io(config.clone()))?;
        let log_path = dir.join("haproxy.log");
        let log = std::fs::File::create(&log_path).map_err(io(log_path.clone()))?;
        let err = log.try_clone().map_err(io(log_path))?;
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| ServerError::Failed {
                what: "haproxy",
                detail: e.to_string(),
            })?;
        let mut haproxy = Self { child, front };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = haproxy.child.try_wait() {
                return Err(ServerError::Failed {
                    what: "haproxy",
                    detail: format!("exited ({status}); see {}", dir.display()),
                });
            }
            if TcpStream::connect_timeout(&front, Duration::from_millis(200)).is_ok() {
                return Ok(haproxy);
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(ServerError::Timeout { what: "haproxy" });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where Users connect.
    pub fn addr(&self) -> SocketAddr {
        self.front
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether HAProxy is installed (on the PATH, or where Debian puts it).
pub fn installed() -> bool {
    binary().is_some()
}

fn binary() -> Option<PathBuf> {
    which("haproxy").or_else(|| {
        let debian = PathBuf::from("/usr/sbin/haproxy");
        debian.is_file().then_some(debian)
    })
}

/// [`DEPLOY_CONFIG`] with its front address and one `server` line per backend written in (the
/// shipped file takes them from the environment, for three instances).
pub fn config_for(front: SocketAddr, backends: &[Backend]) -> String {
    let mut out = String::new();
    for line in DEPLOY_CONFIG.lines() {
        let head = line.trim_start();
        if head.starts_with("server ") || head.starts_with("option allbackups") {
            continue;
        }
        out.push_str(&line.replace("${DCCGW_FRONT}", &front.to_string()));
        out.push('\n');
    }
    for (k, b) in backends.iter().enumerate() {
        out.push_str(&format!(
            "    server i{} \"{}\" check port {}\n",
            k + 1,
            b.addr,
            b.admin_port
        ));
    }
    // The fallbacks, as the shipped file has them for its three.
    out.push_str("    option allbackups\n");
    for (k, b) in backends.iter().enumerate() {
        out.push_str(&format!(
            "    server i{}-fallback \"{}\" backup\n",
            k + 1,
            b.addr
        ));
    }
    out
}

//! Processes under test: started pinned to their cores with `taskset`, stopped with SIGTERM
//! (through `kill`, so no unsafe code here), and their CPU time read from the kernel's own
//! accounting, `/proc/<pid>/stat` (utime + stime), before and after a run.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot start {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not listen on {addr} within {secs} s")]
    NotListening {
        what: String,
        addr: SocketAddr,
        secs: u64,
    },
    #[error("{what} exited before it listened ({status})")]
    Exited { what: String, status: String },
    #[error("taskset failed to pin this process to CPUs {0}")]
    Pin(String),
}

/// `(ppid, utime + stime in clock ticks)` from a `/proc/<pid>/stat` line. The command name is
/// in parentheses and may hold spaces or parentheses itself, so fields are counted from the
/// last `)`.
pub fn parse_stat(text: &str) -> Option<(u32, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when it cannot be asked).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// CPU time of `pid` and its direct children (nginx's workers), in clock ticks.
pub fn tree_cpu_ticks(pid: u32) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(this) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((ppid, ticks)) = parse_stat(&text) {
            if this == pid || ppid == pid {
                total += ticks;
            }
        }
    }
    total
}

/// Resident memory of `pid` in KiB, from the `VmRSS` line of `/proc/<pid>/status` (`None`
/// when the process or the line is not there).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss_kib(&text)
}

/// The `VmRSS:   1234 kB` line's figure.
pub fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Pins every thread of this process to `cpus` (a `taskset` list such as `1`).
pub fn pin_self(cpus: &str) -> Result<(), ProcError> {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(())
        .ok_or_else(|| ProcError::Pin(cpus.to_owned()))
}

/// Starts `program args…` pinned to `cpus` (when given), output to `log`.
pub fn spawn(
    cpus: Option<&str>,
    program: &Path,
    args: &[String],
    log: &Path,
) -> Result<Child, ProcError> {
    let spawn_err = |source| ProcError::Spawn {
        program: program.display().to_string(),
        source,
    };
    let out = std::fs::File::create(log).map_err(spawn_err)?;
    let err = out.try_clone().map_err(spawn_err)?;
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(spawn_err)
}

/// Waits until `addr` accepts TCP connections, or `child` exits, or `secs` pass.
pub async fn wait_listening(
    what: &str,
    child: &mut Child,
    addr: SocketAddr,
    secs: u64,
) -> Result<(), ProcError> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ProcError::Exited {
                what: what.to_owned(),
                status: status.to_string(),
            });
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ProcError::NotListening {
        what: what.to_owned(),
        addr,
        secs,
    })
}

/// SIGTERM, then up to ten seconds to exit, then SIGKILL.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A free port on 127.0.0.1 (bound and released; nothing else on a test machine takes it in
/// the moment before the server binds it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_time_past_odd_command_names() {
        let line =
            "1234 (my (odd) name) S 77 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 4 0 1 2 3";
        assert_eq!(parse_stat(line), Some((77, 281)));
        assert_eq!(parse_stat("1234 (x) S"), None);
        assert_eq!(parse_stat("no parens at all"), None);
    }

    #[test]
    fn reads_this_process() {
        let text = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (ppid, _) = parse_stat(&text).unwrap();
        assert!(ppid > 0);
        assert!(clock_ticks() > 0);
    }

    #[test]
    fn reads_resident_memory() {
        let status = "Name:\tdccgw\nVmPeak:\t  9000 kB\nVmRSS:\t   48212 kB\nThreads:\t4\n";
        assert_eq!(parse_rss_kib(status), Some(48_212));
        assert_eq!(parse_rss_kib("Name:\tx\n"), None);
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }
}

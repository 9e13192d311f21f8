//! `deploy/haproxy/dccgw.cfg` in front of three stand-in instances: TCP passes through
//! untouched, and an instance whose `/readyz` fails stops getting connections.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A stand-in instance: its DUIS port answers each connection's first line with its name and
/// that line; its admin port answers `/readyz` with `ready`'s status.
fn instance(name: &'static str, ready: bool) -> (u16, u16) {
    let duis = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let admin = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let ports = (
        duis.local_addr().unwrap().port(),
        admin.local_addr().unwrap().port(),
    );
    std::thread::spawn(move || {
        for stream in duis.incoming().flatten() {
            let mut line = String::new();
            let mut reader = BufReader::new(&stream);
            if reader.read_line(&mut line).is_ok() {
                let _ = (&stream).write_all(format!("{name} {line}").as_bytes());
            }
        }
    });
    std::thread::spawn(move || {
        let status = if ready {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        for mut stream in admin.incoming().flatten() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    ports
}

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn haproxy_passes_sessions_through_to_ready_instances_only() {
    if !crate::testing::have_tool("haproxy", "-v") {
        return;
    }
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy/dccgw.cfg");
    let front = crate::cluster::servers::free_port().unwrap();
    let (a, a_admin) = instance("a", false);
    let (b, b_admin) = instance("b", true);
    let (c, c_admin) = instance("c", true);
    let addr = |port: u16| format!("127.0.0.1:{port}");
    let _haproxy = Haproxy(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .env("DCCGW_FRONT", addr(front))
            .env("DCCGW_A", addr(a))
            .env("DCCGW_B", addr(b))
            .env("DCCGW_C", addr(c))
            .env("DCCGW_A_ADMIN_PORT", a_admin.to_string())
            .env("DCCGW_B_ADMIN_PORT", b_admin.to_string())
            .env("DCCGW_C_ADMIN_PORT", c_admin.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Until HAProxy has marked `a` down, some sessions may reach it; then none do, and the
    // others share them.
    let start = Instant::now();
    let mut answered_by = Vec::new();
    while answered_by.len() < 20 {
        assert!(start.elapsed() < Duration::from_secs(30), "{answered_by:?}");
        let Ok(mut stream) = TcpStream::connect(addr(front)) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = stream.write_all(b"hello\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        match answer.split_once(' ') {
            Some(("a", "hello\n")) => answered_by.clear(),
            Some((name, "hello\n")) => answered_by.push(name.to_owned()),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    assert!(answered_by.iter().any(|n| n == "b"), "{answered_by:?}");
    assert!(answered_by.iter().any(|n| n == "c"), "{answered_by:?}");
}

/// The configuration written for instances on this host is the shipped file with its front
/// and one checked and one fallback `server` line per instance, and HAProxy accepts it.
#[test]
fn the_configuration_for_n_instances_is_the_shipped_one_with_their_servers() {
    use crate::cluster::haproxy::{config_for, Backend};
    let front = "127.0.0.1:18443".parse().unwrap();
    let backends: Vec<Backend> = (0..4)
        .map(|k| Backend {
            addr: format!("127.0.0.1:{}", 19000 + k).parse().unwrap(),
            admin_port: 19100 + k,
        })
        .collect();
    let text = config_for(front, &backends);
    assert!(text.contains("bind \"127.0.0.1:18443\""), "{text}");
    let mut settings = text.lines().filter(|l| !l.trim_start().starts_with('#'));
    assert!(settings.all(|l| !l.contains("${")), "{text}");
    let servers: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("server "))
        .collect();
    assert_eq!(servers.len(), 8, "{servers:?}");
    assert!(servers.contains(&"    server i4 \"127.0.0.1:19003\" check port 19103"));
    assert!(servers.contains(&"    server i4-fallback \"127.0.0.1:19003\" backup"));
    assert_eq!(text.matches("option allbackups").count(), 1);
    if !crate::testing::have_tool("haproxy", "-v") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, &text).unwrap();
    let check = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

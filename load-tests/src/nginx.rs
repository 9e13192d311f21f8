//! Reference (b): nginx (Debian's package) terminating the same mTLS — the work directory's
//! server certificate, client certificates required and verified against its CA — and answering
//! the same fixed body: what an operator might otherwise put in front. One worker process, as
//! the server under test has one core.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum NginxError {
    #[error("the fixed body holds a character nginx's `return` cannot carry as is (' \\ $ or a control)")]
    Body,
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What nginx serves.
pub struct NginxSite<'a> {
    pub addr: SocketAddr,
    pub cert: &'a Path,
    pub key: &'a Path,
    pub client_ca: &'a Path,
    /// Answered to every request, 200, `application/xml`.
    pub body: &'a str,
}

/// The configuration text; `dir` holds the pid file, logs and temporary files.
pub fn config(site: &NginxSite<'_>, dir: &Path) -> Result<String, NginxError> {
    if site
        .body
        .chars()
        .any(|c| matches!(c, '\'' | '\\' | '$') || (c.is_control() && c != '\n'))
    {
        return Err(NginxError::Body);
    }
    let d = dir.display();
    Ok(format!(
        "# Written by dccgw-load: the nginx reference.\n\
         daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/nginx-error.log warn;\n\
         events {{ worker_connections 8192; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 10000000;\n  keepalive_timeout 120s;\n\
           client_max_body_size 1m;\n  client_body_buffer_size 1m;\n\
           client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
           uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           server {{\n    listen {addr} ssl;\n    ssl_protocols TLSv1.2 TLSv1.3;\n\
             ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
             ssl_client_certificate {ca};\n    ssl_verify_client on;\n    ssl_verify_depth 2;\n\
             ssl_session_cache shared:SSL:10m;\n\
             location / {{\n      default_type application/xml;\n      return 200 '{body}';\n    }}\n  }}\n}}\n",
        addr = site.addr,
        cert = site.cert.display(),
        key = site.key.display(),
        ca = site.client_ca.display(),
        body = site.body,
    ))
}

/// Writes the configuration to `dir/nginx.conf` and returns the arguments to start nginx with.
pub fn prepare(site: &NginxSite<'_>, dir: &Path) -> Result<Vec<String>, NginxError> {
    let text = config(site, dir)?;
    let path = dir.join("nginx.conf");
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&path, text))
        .map_err(|source| NginxError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(vec![
        "-p".into(),
        dir.display().to_string(),
        "-e".into(),
        dir.join("nginx-error.log").display().to_string(),
        "-c".into(),
        path.display().to_string(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(body: &str) -> NginxSite<'_> {
        NginxSite {
            addr: "127.0.0.1:9443".parse().unwrap(),
            cert: Path::new("/w/pki/server.pem"),
            key: Path::new("/w/pki/server.key.pem"),
            client_ca: Path::new("/w/pki/ca.pem"),
            body,
        }
    }

    #[test]
    fn requires_client_certificates_and_answers_the_body() {
        let text = config(&site("<a x=\"1\"/>"), Path::new("/w/nginx")).unwrap();
        assert!(text.contains("ssl_verify_client on;"));
        assert!(text.contains("ssl_client_certificate /w/pki/ca.pem;"));
        assert!(text.contains("listen 127.0.0.1:9443 ssl;"));
        assert!(text.contains("return 200 '<a x=\"1\"/>';"));
        assert!(text.contains("worker_processes 1;"));
    }

    #[test]
    fn refuses_bodies_it_cannot_quote() {
        for bad in ["it's", "a\\b", "$uri", "a\u{0}b"] {
            assert!(config(&site(bad), Path::new("/w")).is_err(), "{bad}");
        }
    }

    #[test]
    fn nginx_accepts_the_configuration_when_installed() {
        if std::process::Command::new("nginx")
            .arg("-v")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: nginx is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // `nginx -t` checks the syntax and opens the files it names: give it real ones.
        let pki = dir.path().join("pki");
        let pop = crate::population::Population::new(10, 0);
        crate::setup::prepare(
            &crate::setup::Workdir::new(dir.path()),
            &pop,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let s = NginxSite {
            addr: format!("127.0.0.1:{}", crate::procs::free_port().unwrap())
                .parse()
                .unwrap(),
            cert: &pki.join("server.pem"),
            key: &pki.join("server.key.pem"),
            client_ca: &pki.join("ca.pem"),
            body: "<ok/>",
        };
        let mut args = prepare(&s, &dir.path().join("nginx")).unwrap();
        args.insert(0, "-t".into());
        let out = std::process::Command::new("nginx")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "nginx -t: {stderr}");
    }
}

//! `dccgw config check`: what a start would load, loaded and thrown away — keys, certificates,
//! the files and directories the configuration names, and every bound — without binding a port
//! or touching the state directory.

use std::path::{Path, PathBuf};

use super::{Config, HubLink};
use crate::domain::SmkiRole;

/// The first thing a start would refuse, named by its configuration key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct CheckError {
    pub key: &'static str,
    pub problem: String,
}

fn fail(key: &'static str, e: impl std::error::Error) -> CheckError {
    let mut problem = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        problem.push_str(": ");
        problem.push_str(&s.to_string());
        source = s.source();
    }
    CheckError { key, problem }
}

fn exists(key: &'static str, path: &Path, dir: bool) -> Result<(), CheckError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() == dir => Ok(()),
        Ok(_) => Err(CheckError {
            key,
            problem: format!(
                "{} is not a {}",
                path.display(),
                if dir { "directory" } else { "file" }
            ),
        }),
        Err(e) => Err(CheckError {
            key,
            problem: format!("{}: {e}", path.display()),
        }),
    }
}

/// Checks `config` as a start would, and returns what was checked, one line each.
pub fn check(config: &Config) -> Result<Vec<String>, CheckError> {
    let mut done = Vec::new();
    let tls = &config.tls;
    let trust = crate::state::load::trust(&tls.client_ca, &tls.crls).map_err(|e| fail("tls", e))?;
    crate::tls::server_config(
        &tls.cert,
        &tls.key,
        std::sync::Arc::new(trust),
        crate::smki::Clients::Users,
    )
    .map_err(|e| fail("tls", e))?;
    done.push(format!("TLS server certificate {}", tls.cert.display()));
    let s = &config.signatures;
    crate::signer::Signer::load(&s.dcc_key, &s.dcc_cert, Some(SmkiRole::DccXmlSigning))
        .map_err(|e| fail("signatures.dcc_key", e))?;
    done.push(format!("DCC XML-signing key {}", s.dcc_key.display()));
    exists("signatures.user_certs", &s.user_certs, true)?;
    for anchor in &s.trust_anchors {
        crate::tls::load_certs(anchor).map_err(|e| fail("signatures.trust_anchors", e))?;
    }
    let r = &config.registration;
    for (key, path) in [
        ("registration.users", &r.users),
        ("registration.devices", &r.devices),
        ("registration.registrations", &r.registrations),
    ] {
        exists(key, path, false)?;
    }
    done.push("registers present (their rows are read at start)".into());
    let routing = &config.routing;
    crate::signer::command_signer(&routing.acb_key, &routing.acb_cert)
        .map_err(|e| fail("routing.acb_key", e))?;
    done.push(format!("broker key {}", routing.acb_key.display()));
    if routing.hub == HubLink::Remote && routing.hub_addr.is_none() {
        return Err(CheckError {
            key: "routing.hub_addr",
            problem: "hub = \"remote\" needs hub_addr".into(),
        });
    }
    if let Some(path) = &routing.hub_config {
        exists("routing.hub_config", path, false)?;
    }
    crate::outbox::HttpsTransport::new(&config.delivery.transport)
        .map_err(|e| fail("delivery.transport", e))?;
    config
        .delivery
        .outbox
        .check()
        .map_err(|e| fail("delivery.outbox", e))?;
    done.push("delivery client certificate and outbox bounds".into());
    crate::alerts::Fanout::new(&config.alerts, 1).map_err(|e| fail("alerts", e))?;
    config
        .admission
        .validate()
        .map_err(|e| fail("admission", e))?;
    done.push("admission bounds".into());
    let rules = rules(config).map_err(|e| fail("rules.files", e))?;
    let book = rules.book();
    done.push(format!(
        "rule versions: {} (the latest {})",
        book.versions().count(),
        book.latest().version
    ));
    if let Some(token) = &config.admin.token_file {
        exists("admin.token_file", token, false)?;
    }
    done.push(format!(
        "state directory {}",
        describe_dir(&config.state.dir)
    ));
    Ok(done)
}

/// The dated rule sets a start with `config` would have: the built-in catalogue and the
/// `[alerts]` routes, the `[rules] files`' versions, then those journalled in the state
/// directory (read, never written). Blocking.
pub fn rules(config: &Config) -> Result<crate::state::Rules, crate::state::RulesLoadError> {
    let base = crate::rules::RuleSet::base(
        crate::catalogue::Catalogue::builtin().clone(),
        config.alerts.routes.clone(),
    );
    let journal = config.state.dir.join(crate::state::rules::JOURNAL_FILE);
    crate::state::Rules::open(base, &config.rules.files, &journal)
}

fn describe_dir(dir: &Path) -> String {
    let shown: PathBuf = dir.to_owned();
    if dir.is_dir() {
        format!("{} (present)", shown.display())
    } else {
        format!("{} (made at start)", shown.display())
    }
}

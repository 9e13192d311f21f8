//! The expiry of every certificate the gateway depends on, for the operators' dashboard and the
//! expiry alerts: its own (TLS server, broker, delivery client; the XML-signing one is recorded
//! by the gateway that holds it) and the earliest of each set of CAs it trusts.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::tls;

use super::StartError;

/// The first certificate's `notAfter` in each file (unix seconds), the earliest of them.
fn earliest(paths: &[&Path]) -> Result<Option<i64>, StartError> {
    let mut earliest = None;
    for path in paths {
        for der in tls::load_certs(path)? {
            if let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) {
                let t = cert.validity().not_after.timestamp();
                earliest = Some(earliest.map_or(t, |e: i64| e.min(t)));
            }
        }
    }
    Ok(earliest)
}

fn leaf(path: &Path) -> Result<Option<i64>, StartError> {
    Ok(tls::load_certs(path)?
        .first()
        .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp()))
}

fn refs(paths: &[PathBuf]) -> Vec<&Path> {
    paths.iter().map(PathBuf::as_path).collect()
}

pub(super) fn record(config: &Config, metrics: &Metrics) -> Result<(), StartError> {
    let own = [
        ("tls_server", leaf(&config.tls.cert)?),
        ("access_control_broker", leaf(&config.routing.acb_cert)?),
        (
            "delivery_client",
            leaf(&config.delivery.transport.client_cert)?,
        ),
        ("tls_client_ca", earliest(&refs(&config.tls.client_ca))?),
        (
            "signing_ca",
            earliest(&refs(&config.signatures.trust_anchors))?,
        ),
    ];
    for (name, not_after) in own {
        if let Some(t) = not_after {
            metrics.certificate_expires(name, t);
        }
    }
    Ok(())
}

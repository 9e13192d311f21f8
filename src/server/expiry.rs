//! The expiry of the gateway's own certificates that no reload reads, for the operators'
//! dashboard and the expiry alerts: the broker's and the delivery client's (the TLS server's and
//! the trusted sets' are recorded by each reload, the XML-signing one by the gateway that holds
//! it).

use std::path::Path;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::tls;

use super::StartError;

fn leaf(path: &Path) -> Result<Option<i64>, StartError> {
    Ok(tls::load_certs(path)?
        .first()
        .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp()))
}

pub(super) fn record(config: &Config, metrics: &Metrics) -> Result<(), StartError> {
    let own = [
        ("access_control_broker", leaf(&config.routing.acb_cert)?),
        (
            "delivery_client",
            leaf(&config.delivery.transport.client_cert)?,
        ),
    ];
    for (name, not_after) in own {
        if let Some(t) = not_after {
            metrics.certificate_expires(name, t);
        }
    }
    Ok(())
}

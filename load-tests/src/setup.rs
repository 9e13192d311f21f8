//! The work directory a run needs, made with the gateway's own tools: a PKI in the SMKI
//! Organisation profile (`dccgw::pki::Ca`) with a TLS client and an XML-signing certificate for
//! every User (and a Digital Signing certificate for each supplier and network operator, the key
//! that signs critical commands), the synthetic registry (`dccgw::state::generate`), the party register with
//! each User's Receive Response URL, and a gateway configuration. What exists is kept: the PKI
//! and registry are made once per directory (a 30-million-device registry takes a while).
//!
//! Layout: `pki/` (CA, `server` for the gateway and references, `receiver` for the generator's
//! Receive Response endpoint, `dcc-xml-sign`, `dcc-acb` the gateway's delivery client),
//! `users/<id>/{tls,xml-sign,digital-signing}{.pem,.key.pem}`, `user-certs/<id>.pem` (XML
//! signing), `ds-certs/<id>.pem` (Digital Signing), `registry-<n>/`,
//! `users.csv`, `dccgw.toml`, `commshub.toml` (with routing), `state/`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use dccgw::domain::{SmkiRole, DCC_ID};
use dccgw::pki::{Ca, LeafSpec, PkiError, Usage, Validity};
use dccgw::registry::RegistryError;
use dccgw::state::generate::generate;

use crate::population::{LoadUser, Population};
use crate::scenario::RoutingSpec;

const DAYS: i64 = 730;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("making a certificate failed")]
    Pki(#[from] PkiError),
    #[error("generating the registry failed")]
    Registry(#[from] RegistryError),
    #[error("the scenario's [routing] tables cannot be written as TOML")]
    Toml(#[from] toml::ser::Error),
    #[error("the gateway configuration's extra tables are not TOML")]
    Extra(#[source] toml::de::Error),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Paths inside a work directory.
#[derive(Clone, Debug)]
pub struct Workdir {
    pub dir: PathBuf,
}

impl Workdir {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()),
        }
    }

    pub fn pki(&self, stem: &str) -> PathBuf {
        self.dir.join("pki").join(format!("{stem}.pem"))
    }

    pub fn pki_key(&self, stem: &str) -> PathBuf {
        self.dir.join("pki").join(format!("{stem}.key.pem"))
    }

    pub fn user(&self, user: &LoadUser, stem: &str) -> PathBuf {
        self.dir.join("users").join(user.name()).join(stem)
    }

    pub fn registry(&self, devices: u64) -> PathBuf {
        self.dir.join(format!("registry-{devices}"))
    }

    /// The Users' Digital Signing certificates, for the gateway and the hub's devices.
    pub fn ds_certs(&self) -> PathBuf {
        self.dir.join("ds-certs")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("dccgw.toml")
    }
}

/// Makes whatever of the PKI and registry `dir` lacks for `pop`.
pub fn prepare(dir: &Workdir, pop: &Population, now: OffsetDateTime) -> Result<(), SetupError> {
    mkdir(&dir.dir.join("pki"))?;
    let leaf = Validity::days_from(now, DAYS);
    let ca = if dir.pki("ca").exists() {
        Ca::load(&dir.pki("ca"), &dir.pki_key("ca"))?
    } else {
        let ca = Ca::generate("dccgw-load IA", Validity::days_from(now, DAYS))?;
        write(&dir.pki("ca"), &ca.cert_pem())?;
        write(&dir.pki_key("ca"), &ca.key_pkcs8_pem()?)?;
        ca
    };
    let localhost = |role, usage| LeafSpec {
        common_name: Some("localhost".to_owned()),
        dns_names: vec!["localhost".to_owned()],
        ip_addresses: vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
        ..LeafSpec::new(role, DCC_ID, usage, leaf)
    };
    let leaves = [
        (
            "server",
            localhost(SmkiRole::AccessControlBroker, Usage::TlsServer),
        ),
        ("receiver", localhost(SmkiRole::Other, Usage::TlsServer)),
        (
            "dcc-xml-sign",
            LeafSpec::new(SmkiRole::DccXmlSigning, DCC_ID, Usage::XmlSigning, leaf),
        ),
        (
            "dcc-acb",
            LeafSpec::new(
                SmkiRole::AccessControlBroker,
                DCC_ID,
                Usage::TlsClient,
                leaf,
            ),
        ),
    ];
    for (stem, spec) in leaves {
        if !dir.pki(stem).exists() {
            let issued = ca.issue(&spec)?;
            write(&dir.pki_key(stem), &issued.key_pkcs8_pem)?;
            write(&dir.pki(stem), &issued.cert_pem)?;
        }
    }
    mkdir(&dir.dir.join("user-certs"))?;
    for user in &pop.users {
        if dir.user(user, "xml-sign.pem").exists() {
            continue;
        }
        mkdir(&dir.dir.join("users").join(user.name()))?;
        let tls = ca.issue(&LeafSpec {
            common_name: Some(user.name()),
            ..LeafSpec::new(user.tls_role(), user.id, Usage::TlsClient, leaf)
        })?;
        write(&dir.user(user, "tls.key.pem"), &tls.key_pkcs8_pem)?;
        write(&dir.user(user, "tls.pem"), &tls.cert_pem)?;
        let sign = ca.issue(&LeafSpec::new(
            SmkiRole::XmlSigning,
            user.id,
            Usage::XmlSigning,
            leaf,
        ))?;
        write(&dir.user(user, "xml-sign.key.pem"), &sign.key_pkcs8_pem)?;
        write(
            &dir.dir
                .join("user-certs")
                .join(format!("{}.pem", user.name())),
            &sign.cert_pem,
        )?;
        // Written last: its presence marks the User as complete.
        write(&dir.user(user, "xml-sign.pem"), &sign.cert_pem)?;
    }
    mkdir(&dir.ds_certs())?;
    for user in pop.users.iter().filter(|u| u.signs_digitally()) {
        if !dir.user(user, "digital-signing.pem").exists() {
            digital_signing(dir, &ca, user, leaf)?;
        }
    }
    let registry = dir.registry(pop.spec.devices);
    if !registry.join("registrations.csv").exists() {
        mkdir(&registry)?;
        generate(&registry, &pop.spec)?;
    }
    Ok(())
}

/// `user`'s Digital Signing certificate (its TLS certificate's role, key usage
/// digitalSignature) and key, and a copy of the certificate in `ds-certs/`.
fn digital_signing(
    dir: &Workdir,
    ca: &Ca,
    user: &LoadUser,
    leaf: Validity,
) -> Result<(), SetupError> {
    let issued = ca.issue(&LeafSpec::new(
        user.tls_role(),
        user.id,
        Usage::DigitalSigning,
        leaf,
    ))?;
    write(
        &dir.user(user, "digital-signing.key.pem"),
        &issued.key_pkcs8_pem,
    )?;
    write(
        &dir.ds_certs().join(format!("{}.pem", user.name())),
        &issued.cert_pem,
    )?;
    // Written last: its presence marks the key pair as complete.
    write(&dir.user(user, "digital-signing.pem"), &issued.cert_pem)
}

/// The party register: every User its own party, active, delivering to `response_url`.
pub fn write_users(dir: &Workdir, pop: &Population, response_url: &str) -> Result<(), SetupError> {
    let mut text = String::from("user_id,party_id,party_name,roles,status,response_url\n");
    for user in &pop.users {
        let _ = writeln!(
            text,
            "{},{name},load {name},{},active,{response_url}",
            user.id,
            user.role,
            name = user.name()
        );
    }
    write(&dir.dir.join("users.csv"), &text)
}

/// A gateway configuration on `addr` for `pop`'s registry, with `extra` TOML appended. Every
/// User's connection comes from the generator's one address, so the gateway's per-source bound
/// (`[limits] max_connections_per_source`, 64 by default: beyond it a connection is closed at
/// once) is raised to the population's Users with room for a reconnect each.
pub fn write_gateway_config(
    dir: &Workdir,
    pop: &Population,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    extra: &str,
) -> Result<PathBuf, SetupError> {
    let registry = dir.registry(pop.spec.devices);
    let text = format!(
        "# Written by dccgw-load.\n\
         [listen]\naddr = \"{addr}\"\nadmin_addr = \"{admin_addr}\"\n\n\
         [tls]\ncert = \"{server}\"\nkey = \"{server_key}\"\nclient_ca = [\"{ca}\"]\n\n\
         [registration]\nusers = \"{users}\"\ndevices = \"{devices}\"\nregistrations = \"{registrations}\"\n\n\
         [signatures]\ndcc_key = \"{sign_key}\"\ndcc_cert = \"{sign}\"\nuser_certs = \"{user_certs}\"\n\
         digital_signing_certs = \"{ds_certs}\"\ntrust_anchors = [\"{ca}\"]\n\n[state]\ndir = \"{state}\"\n\n{extra}\n",
        server = dir.pki("server").display(),
        server_key = dir.pki_key("server").display(),
        ca = dir.pki("ca").display(),
        users = dir.dir.join("users.csv").display(),
        devices = registry.join("devices.csv").display(),
        registrations = registry.join("registrations.csv").display(),
        sign = dir.pki("dcc-xml-sign").display(),
        sign_key = dir.pki_key("dcc-xml-sign").display(),
        user_certs = dir.dir.join("user-certs").display(),
        ds_certs = dir.ds_certs().display(),
        extra = with_source_bound(extra, 2 * pop.users.len() + 16)?,
        state = dir.dir.join("state").display(),
    );
    let path = dir.config();
    write(&path, &text)?;
    Ok(path)
}

/// `extra` with `[limits] max_connections_per_source = bound` added unless it sets one.
fn with_source_bound(extra: &str, bound: usize) -> Result<String, SetupError> {
    let mut doc: toml::Table = extra.parse().map_err(SetupError::Extra)?;
    let limits = doc
        .entry("limits")
        .or_insert_with(|| toml::Table::new().into());
    if let Some(limits) = limits.as_table_mut() {
        limits
            .entry("max_connections_per_source")
            .or_insert_with(|| i64::try_from(bound).unwrap_or(i64::MAX).into());
    }
    Ok(toml::to_string(&doc)?)
}

/// The gateway's `[routing]` and `[delivery.transport]` tables for the hub process at
/// `hub_addr`: commands signed with the `dcc-acb` key, Service Responses delivered with its
/// certificate to endpoints chained to the work directory's CA (the generator's receiver).
pub fn routing_config(
    dir: &Workdir,
    hub_addr: SocketAddr,
    spec: &RoutingSpec,
) -> Result<String, SetupError> {
    let mut routing = toml::Table::new();
    routing.insert("hub".into(), "remote".into());
    routing.insert("hub_addr".into(), hub_addr.to_string().into());
    routing.insert("dispatch".into(), spec.dispatch.clone().into());
    routing_and_delivery(dir, routing)
}

/// As [`routing_config`], with the simulated hub network in the gateway's own process (its
/// built-in behaviour): for tests that run the gateway in the test's process.
pub fn in_process_routing_config(dir: &Workdir) -> Result<String, SetupError> {
    let mut routing = toml::Table::new();
    routing.insert("hub".into(), "in_process".into());
    routing_and_delivery(dir, routing)
}

/// `routing` with the broker key added, and the `[delivery]` table.
fn routing_and_delivery(dir: &Workdir, mut routing: toml::Table) -> Result<String, SetupError> {
    routing.insert("acb_key".into(), toml_path(dir.pki_key("dcc-acb")));
    routing.insert("acb_cert".into(), toml_path(dir.pki("dcc-acb")));
    let mut transport = toml::Table::new();
    transport.insert("client_cert".into(), toml_path(dir.pki("dcc-acb")));
    transport.insert("client_key".into(), toml_path(dir.pki_key("dcc-acb")));
    transport.insert(
        "trust_anchors".into(),
        toml::Value::Array(vec![toml_path(dir.pki("ca"))]),
    );
    // Every User's Receive Response endpoint is the generator's one host: let the gateway keep
    // enough idle connections to it for all of them (its default, 16 per host, suits Users on
    // hosts of their own; here it would make the gateway handshake for most deliveries).
    transport.insert("max_idle_per_host".into(), 1024.into());
    let mut delivery = toml::Table::new();
    delivery.insert("transport".into(), transport.into());
    let mut doc = toml::Table::new();
    doc.insert("routing".into(), routing.into());
    doc.insert("delivery".into(), delivery.into());
    Ok(toml::to_string(&doc)?)
}

/// The `dccgw commshub` configuration: `pop`'s registry as the fleet, the `dcc-acb`
/// certificate as the broker whose commands it takes, the scenario's simulator settings.
pub fn write_hub_config(
    dir: &Workdir,
    pop: &Population,
    listen: SocketAddr,
    spec: &RoutingSpec,
) -> Result<PathBuf, SetupError> {
    let registry = dir.registry(pop.spec.devices);
    let mut doc = toml::Table::new();
    doc.insert("listen".into(), listen.to_string().into());
    doc.insert("devices".into(), toml_path(registry.join("devices.csv")));
    doc.insert(
        "registrations".into(),
        toml_path(registry.join("registrations.csv")),
    );
    doc.insert(
        "acb_certs".into(),
        toml::Value::Array(vec![toml_path(dir.pki("dcc-acb"))]),
    );
    let mut hub = spec.hub.clone();
    // The devices verify the Users' signatures on critical commands.
    hub.entry("digital_signing_certs")
        .or_insert_with(|| toml_path(dir.ds_certs()));
    doc.insert("hub".into(), hub.into());
    let file = dir.dir.join("commshub.toml");
    write(
        &file,
        &format!("# Written by dccgw-load.\n{}", toml::to_string(&doc)?),
    )?;
    Ok(file)
}

/// A file path as a TOML string.
fn toml_path(p: PathBuf) -> toml::Value {
    toml::Value::String(p.display().to_string())
}

fn mkdir(path: &Path) -> Result<(), SetupError> {
    std::fs::create_dir_all(path).map_err(|source| SetupError::Write {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<(), SetupError> {
    std::fs::write(path, text).map_err(|source| SetupError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;

//! `dccgw pki init`: the whole dev PKI written to one directory (layout in `certs/README.md`).

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{Ca, Issued, LeafSpec, PkiError, Usage, Validity};
use crate::domain::{Eui64, SmkiRole, DCC_ID};

/// Leaf certificates live about two years, the CA ten.
const LEAF_DAYS: i64 = 730;
const CA_DAYS: i64 = 3650;
const CA_NAME: &str = "dccgw dev IA";

/// The demo Users (the DCC public test environment's identities): directory name, User ID, and the organisation role code their TLS
/// client certificate carries.
pub const DEV_USERS: [(&str, Eui64, SmkiRole); 4] = [
    (
        "supplier",
        eui([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0, 0]),
        SmkiRole::Supplier,
    ),
    (
        "network-operator",
        eui([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x02, 0, 0]),
        SmkiRole::NetworkOperator,
    ),
    (
        "supplier2",
        eui([0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x03, 0, 0]),
        SmkiRole::Supplier,
    ),
    (
        "other-user",
        eui([0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x00, 0x04]),
        SmkiRole::Other,
    ),
];

const fn eui(bytes: [u8; 8]) -> Eui64 {
    Eui64::from_bytes(bytes)
}

/// A certificate file and its key file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One demo User's files under `users/<name>/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevUser {
    pub name: &'static str,
    pub user_id: Eui64,
    /// The organisation role code of the TLS client certificate (`02`, `03`, `7F`).
    pub tls_role: SmkiRole,
    /// The TLS client certificate (`tls.pem`, `tls.key.pem`).
    pub tls: PemPair,
    /// The XML-signing certificate, role `87` (`xml-sign.pem`, `xml-sign.key.pem`).
    pub xml_sign: PemPair,
    /// The Digital Signing certificate that signs critical commands, in the role of the TLS
    /// certificate (`digital-signing.pem`, `digital-signing.key.pem`): only for suppliers
    /// (`02`) and network operators (`03`), the roles that send critical requests.
    pub digital_signing: Option<PemPair>,
    /// `client.pem`: the TLS client certificate followed by its key, for `curl --cert`.
    pub client_bundle: PathBuf,
}

/// The files [`init`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevPki {
    pub dir: PathBuf,
    /// The Issuing Authority, `CN=dccgw dev IA, OU=07`.
    pub ca: PemPair,
    /// The gateway's TLS server certificate: `localhost`, `127.0.0.1`, `::1`.
    pub server: PemPair,
    /// The DCC's XML-signing certificate, role `89`, User ID the DCC's.
    pub dcc_xml_sign: PemPair,
    /// The DCC access-control broker, role `04`: the DCC's TLS client certificate when it
    /// delivers responses and alerts to a User's Receive Response Service.
    pub dcc_acb: PemPair,
    pub users: Vec<DevUser>,
}

impl DevPki {
    pub fn user(&self, name: &str) -> Option<&DevUser> {
        self.users.iter().find(|u| u.name == name)
    }
}

/// Writes a new dev PKI under `out`. Refuses if `out` exists and is not empty: a PKI is precious.
pub fn init(out: &Path, now: OffsetDateTime) -> Result<DevPki, PkiError> {
    write_pki(out, now, false)
}

/// As [`init`], but overwrites the PKI's files in `out` if they exist (other files are left).
pub fn init_force(out: &Path, now: OffsetDateTime) -> Result<DevPki, PkiError> {
    write_pki(out, now, true)
}

fn write_pki(out: &Path, now: OffsetDateTime, overwrite: bool) -> Result<DevPki, PkiError> {
    if !overwrite && !is_empty_or_absent(out)? {
        return Err(PkiError::OutputExists {
            path: out.to_path_buf(),
        });
    }
    let w = Writer {
        dir: out,
        overwrite,
    };
    w.mkdir(out)?;
    let leaf = Validity::days_from(now, LEAF_DAYS);

    let ca = Ca::generate(CA_NAME, Validity::days_from(now, CA_DAYS))?;
    let ca_files = w.pair("", "ca", &ca.cert_pem(), &ca.key_pkcs8_pem()?)?;

    let server_spec = LeafSpec {
        common_name: Some("localhost".to_owned()),
        dns_names: vec!["localhost".to_owned()],
        ip_addresses: vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
        ..LeafSpec::new(
            SmkiRole::AccessControlBroker,
            DCC_ID,
            Usage::TlsServer,
            leaf,
        )
    };
    let server = w.issued("", "server", &ca.issue(&server_spec)?)?;
    let dcc_sign = LeafSpec::new(SmkiRole::DccXmlSigning, DCC_ID, Usage::XmlSigning, leaf);
    let dcc_xml_sign = w.issued("", "dcc-xml-sign", &ca.issue(&dcc_sign)?)?;
    let acb = LeafSpec::new(
        SmkiRole::AccessControlBroker,
        DCC_ID,
        Usage::TlsClient,
        leaf,
    );
    let dcc_acb = w.issued("", "dcc-acb", &ca.issue(&acb)?)?;

    let mut users = Vec::with_capacity(DEV_USERS.len());
    for (name, user_id, tls_role) in DEV_USERS {
        users.push(w.user(&ca, name, user_id, tls_role, leaf)?);
    }
    Ok(DevPki {
        dir: out.to_path_buf(),
        ca: ca_files,
        server,
        dcc_xml_sign,
        dcc_acb,
        users,
    })
}

fn is_empty_or_absent(dir: &Path) -> Result<bool, PkiError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(PkiError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

struct Writer<'a> {
    dir: &'a Path,
    overwrite: bool,
}

impl Writer<'_> {
    /// One demo User's certificates and keys under `users/<name>/`.
    fn user(
        &self,
        ca: &Ca,
        name: &'static str,
        user_id: Eui64,
        tls_role: SmkiRole,
        leaf: Validity,
    ) -> Result<DevUser, PkiError> {
        let sub = format!("users/{name}/");
        self.mkdir(&self.dir.join(&sub))?;
        let tls_spec = LeafSpec {
            common_name: Some(name.to_owned()),
            ..LeafSpec::new(tls_role, user_id, Usage::TlsClient, leaf)
        };
        let tls_cert = ca.issue(&tls_spec)?;
        let tls = self.issued(&sub, "tls", &tls_cert)?;
        let bundle = format!("{}{}", tls_cert.cert_pem, tls_cert.key_pkcs8_pem);
        let client_bundle = self.file(&format!("{sub}client.pem"), &bundle, true)?;
        let sign_spec = LeafSpec::new(SmkiRole::XmlSigning, user_id, Usage::XmlSigning, leaf);
        let xml_sign = self.issued(&sub, "xml-sign", &ca.issue(&sign_spec)?)?;
        let digital_signing = match tls_role {
            SmkiRole::Supplier | SmkiRole::NetworkOperator => {
                let spec = LeafSpec::new(tls_role, user_id, Usage::DigitalSigning, leaf);
                Some(self.issued(&sub, "digital-signing", &ca.issue(&spec)?)?)
            }
            _ => None,
        };
        Ok(DevUser {
            name,
            user_id,
            tls_role,
            tls,
            xml_sign,
            digital_signing,
            client_bundle,
        })
    }

    fn mkdir(&self, path: &Path) -> Result<(), PkiError> {
        fs::create_dir_all(path).map_err(|source| PkiError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    fn issued(&self, sub: &str, stem: &str, issued: &Issued) -> Result<PemPair, PkiError> {
        self.pair(sub, stem, &issued.cert_pem, &issued.key_pkcs8_pem)
    }

    fn pair(&self, sub: &str, stem: &str, cert: &str, key: &str) -> Result<PemPair, PkiError> {
        Ok(PemPair {
            cert: self.file(&format!("{sub}{stem}.pem"), cert, false)?,
            key: self.file(&format!("{sub}{stem}.key.pem"), key, true)?,
        })
    }

    /// Writes one file; `secret` files (keys) are readable by the owner only.
    fn file(&self, rel: &str, contents: &str, secret: bool) -> Result<PathBuf, PkiError> {
        let path = self.dir.join(rel);
        let io = |source| PkiError::Io {
            path: path.clone(),
            source,
        };
        let mode = if secret { 0o600 } else { 0o644 };
        let mut options = fs::OpenOptions::new();
        options.write(true);
        if self.overwrite {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            options.mode(mode);
            let mut file = options.open(&path).map_err(io)?;
            // An overwritten file keeps its old mode unless told.
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(io)?;
            file.write_all(contents.as_bytes()).map_err(io)?;
        }
        #[cfg(not(unix))]
        {
            let _ = mode;
            let mut file = options.open(&path).map_err(io)?;
            file.write_all(contents.as_bytes()).map_err(io)?;
        }
        Ok(path)
    }
}

//! `dccgw demo`: a working gateway on embedded defaults. It makes the dev PKI if missing, writes
//! a configuration and party register whose Users are the DCC public test environment's (so the
//! public request templates run unmodified), and an example request, then prints how to use it.

pub mod cluster;

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::pki;

/// The demo Users: directory name under `certs/dev/users/`, User ID, party, roles, name.
pub const DEMO_USERS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "supplier",
        "90-B3-D5-1F-30-01-00-00",
        "SUP1",
        "IS|GS",
        "Demo Supplier",
    ),
    (
        "network-operator",
        "90-B3-D5-1F-30-02-00-00",
        "NO1",
        "ED|GT",
        "Demo Network Operator",
    ),
    (
        "supplier2",
        "90-B3-D5-1F-30-03-00-00",
        "SUP2",
        "IS|GS",
        "Demo Second Supplier",
    ),
    (
        "other-user",
        "00-DB-12-34-56-78-00-04",
        "OU1",
        "OU",
        "Demo Other User",
    ),
];

/// The demo's electricity meter (the public test environment's ESME).
pub const DEMO_ESME: &str = "00-DB-12-34-56-78-90-A0";

/// The public test environment's devices, as the request templates address them: ID, type,
/// MPxN, comms hub. All are Commissioned, in the central region. The templates fix the types:
/// A5 takes a Method A (critical) join as a non-meter device, which only a PPMID or HCALCS can
/// (A4 is the PPMID: its firmware is read by CS08); A6 takes an auxiliary proportional
/// controller's calendar (ECS46d), an electricity use case — a standalone APC, which DUIS types
/// as an ESME.
pub const DEMO_DEVICES: &[(&str, &str, &str, &str)] = &[
    ("00-DB-12-34-56-78-90-A2", "CHF", "", ""),
    (DEMO_ESME, "ESME", DEMO_MPAN, "00-DB-12-34-56-78-90-A2"),
    (
        "00-DB-12-34-56-78-90-A1",
        "GSME",
        DEMO_MPRN,
        "00-DB-12-34-56-78-90-A2",
    ),
    (
        "00-DB-12-34-56-78-90-A3",
        "GPF",
        DEMO_MPRN,
        "00-DB-12-34-56-78-90-A2",
    ),
    (
        "00-DB-12-34-56-78-90-A4",
        "PPMID",
        "",
        "00-DB-12-34-56-78-90-A2",
    ),
    (
        "00-DB-12-34-56-78-90-A5",
        "HCALCS",
        "",
        "00-DB-12-34-56-78-90-A2",
    ),
    (
        "00-DB-12-34-56-78-90-A6",
        "ESME",
        "",
        "00-DB-12-34-56-78-90-A2",
    ),
];

/// The demo premises' meter points.
pub const DEMO_MPAN: &str = "1200023305967";
pub const DEMO_MPRN: &str = "3453612";

/// Who is registered for the demo meter points, from 2010 on (the public templates' future
/// dates are in 2015): the demo supplier (import and
/// gas) and the demo network operator. The second supplier is registered for nothing.
pub const DEMO_REGISTRATIONS: &[(&str, &str, &str)] = &[
    (DEMO_MPAN, "IS", "90-B3-D5-1F-30-01-00-00"),
    (DEMO_MPAN, "ED", "90-B3-D5-1F-30-02-00-00"),
    (DEMO_MPRN, "GS", "90-B3-D5-1F-30-01-00-00"),
    (DEMO_MPRN, "GT", "90-B3-D5-1F-30-02-00-00"),
];

/// Writes `users.csv`, `devices.csv` and `registrations.csv` for the public test environment's
/// identities into `dir`. With `responses`, every User's Receive Response Service is
/// `<responses>/<User ID>`.
pub fn write_registers(dir: &Path, responses: Option<&str>) -> Result<(), DemoError> {
    let mut users = String::from("user_id,party_id,party_name,roles,status,response_url\n");
    for (_, id, party, roles, name) in DEMO_USERS {
        let url = responses
            .map(|base| format!("{base}/{id}"))
            .unwrap_or_default();
        let _ = writeln!(users, "{id},{party},{name},{roles},active,{url}");
    }
    write(&dir.join("users.csv"), &users)?;
    let mut devices = String::from("device_id,device_type,status,mpxn,chf_id,csp_region\n");
    for (id, kind, mpxn, chf) in DEMO_DEVICES {
        let _ = writeln!(devices, "{id},{kind},Commissioned,{mpxn},{chf},central");
    }
    write(&dir.join("devices.csv"), &devices)?;
    let mut registrations = String::from("mpxn,role,user_id,effective_from,effective_to\n");
    for (mpxn, role, user) in DEMO_REGISTRATIONS {
        let _ = writeln!(registrations, "{mpxn},{role},{user},2010-01-01T00:00:00Z,");
    }
    write(&dir.join("registrations.csv"), &registrations)
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot make the dev PKI in {dir}")]
    Pki {
        dir: PathBuf,
        #[source]
        source: pki::PkiError,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Where the demo keeps its files, and the ports it asks for (0 = any free port).
pub struct DemoPlan {
    pub certs: PathBuf,
    pub dir: PathBuf,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The demo Users' Receive Response Service (one server for all of them), already
    /// listening: `prepare` names it in the register.
    pub receiver_addr: SocketAddr,
}

/// Makes the dev PKI in `certs` unless it is there.
pub fn ensure_pki(certs: &Path, now: OffsetDateTime) -> Result<(), DemoError> {
    if !certs.join("ca.pem").exists() {
        pki::init(certs, now).map_err(|source| DemoError::Pki {
            dir: certs.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Where the demo's Receive Response Service writes what the gateway delivers.
pub fn received_dir(plan: &DemoPlan) -> PathBuf {
    absolute(&plan.dir).join("received")
}

/// What `prepare` wrote.
pub struct DemoFiles {
    pub config: PathBuf,
    pub example_request: PathBuf,
    /// A critical request's first step (Command Variant 4, Transform): 7.1 Enable Supply.
    pub example_transform: PathBuf,
}

/// The admin API's bearer token in `dir`, made once and kept, readable by its owner only.
fn admin_token(dir: &Path) -> Result<PathBuf, DemoError> {
    let token = dir.join("admin.token");
    if !token.exists() {
        let mut bytes = [0u8; 24];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).map_err(
            |_| DemoError::Write {
                path: token.clone(),
                source: io::Error::other("no randomness for the admin token"),
            },
        )?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_secret(&token, &format!("{hex}\n"))?;
    }
    // A token written by an older demo may be readable by others.
    owner_only(&token)?;
    Ok(token)
}

/// Makes the PKI if `certs` has none, then writes the configuration, the party register and the
/// example request into `dir`. Paths in the configuration are absolute, so it runs from anywhere.
pub fn prepare(plan: &DemoPlan, now: OffsetDateTime) -> Result<DemoFiles, DemoError> {
    ensure_pki(&plan.certs, now)?;
    create_dir(&plan.dir)?;
    let certs = absolute(&plan.certs);
    let dir = absolute(&plan.dir);

    let responses = format!("https://localhost:{}/duis", plan.receiver_addr.port());
    write_registers(&dir, Some(&responses))?;

    // The Users' XML-signing certificates, as the gateway's store of them.
    let user_certs = dir.join("user-certs");
    create_dir(&user_certs)?;
    for (name, ..) in DEMO_USERS {
        let from = certs.join("users").join(name).join("xml-sign.pem");
        let to = user_certs.join(format!("{name}.pem"));
        std::fs::copy(&from, &to).map_err(|source| DemoError::Write { path: to, source })?;
    }

    let token = admin_token(&dir)?;

    let config = dir.join("dccgw.toml");
    let text = format!(
        "# Written by `dccgw demo`; edit freely, or copy it for `dccgw serve --config`.\n\
         [listen]\naddr = \"{addr}\"\nadmin_addr = \"{admin}\"\n\n\
         [tls]\ncert = \"{certs}/server.pem\"\nkey = \"{certs}/server.key.pem\"\nclient_ca = [\"{certs}/ca.pem\"]\n\n\
         [registration]\nusers = \"{dir}/users.csv\"\ndevices = \"{dir}/devices.csv\"\n\
         registrations = \"{dir}/registrations.csv\"\n\n\
         [signatures]\ndcc_key = \"{certs}/dcc-xml-sign.key.pem\"\ndcc_cert = \"{certs}/dcc-xml-sign.pem\"\n\
         user_certs = \"{user_certs}\"\ntrust_anchors = [\"{certs}/ca.pem\"]\n\
         # The Users' Digital Signing certificates (critical commands), among their others.\n\
         digital_signing_certs = \"{certs}/users\"\n\n\
         [state]\ndir = \"{state}\"\n\n\
         [admin]\ntoken_file = \"{token}\"\n\n\
         # Signed routing to the simulated comms-hub network, inside this process.\n\
         [routing]\nacb_key = \"{certs}/dcc-acb.key.pem\"\nacb_cert = \"{certs}/dcc-acb.pem\"\nhub = \"in_process\"\n\n\
         # Asynchronous responses and alerts, delivered with the broker's TLS client certificate.\n\
         [delivery.transport]\nclient_cert = \"{certs}/dcc-acb.pem\"\nclient_key = \"{certs}/dcc-acb.key.pem\"\n\
         trust_anchors = [\"{certs}/ca.pem\"]\n",
        addr = plan.addr,
        admin = plan.admin_addr,
        certs = certs.display(),
        dir = dir.display(),
        user_certs = user_certs.display(),
        state = dir.join("state").display(),
        token = token.display(),
    );
    write(&config, &text)?;

    let requests = dir.join("requests");
    create_dir(&requests)?;
    let example_request = requests.join("read-instantaneous-import-registers.xml");
    // Epoch milliseconds, as the DCC's tools stamp counters; `dccgw sign --stamp-counter` renews it.
    let counter = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(1);
    write(
        &example_request,
        &example_request_xml(DEMO_USERS[0].1, DEMO_ESME, counter),
    )?;
    let example_transform = requests.join("enable-supply-transform.xml");
    write(
        &example_transform,
        &example_transform_xml(DEMO_USERS[0].1, DEMO_ESME, counter),
    )?;
    Ok(DemoFiles {
        config,
        example_request,
        example_transform,
    })
}

/// A 7.1 Enable Supply request, Command Variant 4 (Transform): the gateway answers with the
/// pre-command for the User to sign.
pub fn example_transform_xml(originator: &str, device: &str, counter: u64) -> String {
    request_xml(
        originator,
        device,
        counter,
        (4, "7.1", "7.1"),
        "EnableSupply",
    )
}

/// A 4.1.1 Read Instantaneous Import Registers request, Command Variant 1 (Send Command).
pub fn example_request_xml(originator: &str, device: &str, counter: u64) -> String {
    request_xml(
        originator,
        device,
        counter,
        (1, "4.1", "4.1.1"),
        "ReadInstantaneousImportRegisters",
    )
}

/// An unsigned request with an empty body element, given its Command Variant, Service Reference
/// and Service Reference Variant.
fn request_xml(
    originator: &str,
    device: &str,
    counter: u64,
    (cv, sr, srv): (u8, &str, &str),
    element: &str,
) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">
  <sr:Header>
    <sr:RequestID>{originator}:{device}:{counter}</sr:RequestID>
    <sr:CommandVariant>{cv}</sr:CommandVariant>
    <sr:ServiceReference>{sr}</sr:ServiceReference>
    <sr:ServiceReferenceVariant>{srv}</sr:ServiceReferenceVariant>
  </sr:Header>
  <sr:Body>
    <sr:{element}/>
  </sr:Body>
</sr:Request>
"#
    )
}

/// The text the demo prints once it listens. `dccgw` is the path of this program, so the
/// printed command runs from any directory.
pub fn banner(
    plan: &DemoPlan,
    files: &DemoFiles,
    dccgw: &Path,
    addr: SocketAddr,
    admin: SocketAddr,
) -> String {
    let certs = absolute(&plan.certs);
    let user = certs.join("users").join(DEMO_USERS[0].0);
    format!(
        "dccgw demo is running.\n\
         \n  DUIS base URL   https://{addr}\n  admin URL       http://{admin}  (/metrics /livez /readyz)\n  \
         metrics URL     http://{admin}/metrics\n  \
         audit trail     {audit}  ({dccgw} audit verify {audit}; {dccgw} report usage --month YYYY-MM --config {config})\n  \
         certificates    {certs}\n  configuration   {config}\n  \
         admin token     {token}  (POST /admin/v1/registry/changes; schemas/changes.md)\n  \
         responses       {received}  (the demo Users' Receive Response Service writes each \
         asynchronous response and alert here)\n\
         \nSign a request as the demo supplier (with a fresh counter) and send it, from another terminal:\n\n\
         {dccgw} sign --stamp-counter --key {key} --cert {cert} {request} \
         | curl --silent --show-error --cacert {ca} --cert {client} -H 'Content-Type: application/xml' \
         --data-binary @- https://{addr}/api/v1/serviceS\n\
         {critical}\
         \nStop with Ctrl-C.\n",
        critical = critical_example(plan, files, dccgw, addr),
        dccgw = dccgw.display(),
        certs = certs.display(),
        config = files.config.display(),
        token = plan.dir.join("admin.token").display(),
        audit = audit_dir(plan).display(),
        received = received_dir(plan).display(),
        key = user.join("xml-sign.key.pem").display(),
        cert = user.join("xml-sign.pem").display(),
        ca = certs.join("ca.pem").display(),
        client = user.join("client.pem").display(),
        request = files.example_request.display(),
    )
}

/// The banner's two steps of a critical request: the Transform (answered with the pre-command,
/// kept in a file), then the pre-command signed with the Digital Signing key and sent back as
/// Command Variant 5 under the same RequestID.
fn critical_example(plan: &DemoPlan, files: &DemoFiles, dccgw: &Path, addr: SocketAddr) -> String {
    let certs = absolute(&plan.certs);
    let user = certs.join("users").join(DEMO_USERS[0].0);
    let curl = format!(
        "curl --silent --show-error --cacert {ca} --cert {client} -H 'Content-Type: application/xml' \
         --data-binary @-",
        ca = certs.join("ca.pem").display(),
        client = user.join("client.pem").display(),
    );
    let response = absolute(&plan.dir).join("transform-response.xml");
    format!(
        "\nA critical request goes in two steps. Ask for its pre-command (Command Variant 4) …\n\n\
         {dccgw} sign --stamp-counter --key {key} --cert {cert} {transform} | {curl} \
         https://{addr}/api/v1/serviceT > {response}\n\
         \n… then sign the pre-command with the Digital Signing key and send it back (Command \
         Variant 5, the same RequestID):\n\n\
         {dccgw} sign-precommand --key {ds_key} --cert {ds_cert} --xml-key {key} --xml-cert {cert} \
         {response} | {curl} https://{addr}/api/v1/serviceS\n",
        dccgw = dccgw.display(),
        key = user.join("xml-sign.key.pem").display(),
        cert = user.join("xml-sign.pem").display(),
        ds_key = user.join("digital-signing.key.pem").display(),
        ds_cert = user.join("digital-signing.pem").display(),
        transform = files.example_transform.display(),
        response = response.display(),
    )
}

/// Where the demo's audit trail lives (the configuration's default: `audit/` in the state
/// directory).
pub fn audit_dir(plan: &DemoPlan) -> PathBuf {
    absolute(&plan.dir).join("state").join("audit")
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

fn create_dir(path: &Path) -> Result<(), DemoError> {
    std::fs::create_dir_all(path).map_err(|source| DemoError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes a new file that only its owner can read, from its creation on.
fn write_secret(path: &Path, text: &str) -> Result<(), DemoError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| DemoError::Write {
            path: path.to_owned(),
            source,
        })
}

/// Takes every permission but the owner's away from `path` (a secret).
fn owner_only(path: &Path) -> Result<(), DemoError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| DemoError::Write {
                path: path.to_owned(),
                source,
            },
        )?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), DemoError> {
    std::fs::write(path, text).map_err(|source| DemoError::Write {
        path: path.to_owned(),
        source,
    })
}

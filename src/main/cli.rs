//! The `dccgw` command line as clap reads it: every command, argument and help text.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use dccgw::tools;

#[derive(Parser)]
#[command(
    name = "dccgw",
    version,
    about = "A DCC User Gateway for the GB smart-metering network"
)]
pub(crate) struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the gateway from a configuration file (environment overrides: DCCGW_SECTION__KEY).
    Serve {
        /// The configuration file (TOML; every key: `dccgw config defaults`).
        #[arg(long)]
        config: PathBuf,
    },
    /// The configuration: every key with its default and bound, or a file checked.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run a demo gateway on embedded defaults, with a dev PKI and the public test Users.
    Demo {
        /// Where the dev PKI lives (made if missing).
        #[arg(long, default_value = "certs/dev")]
        certs: PathBuf,
        /// Where the demo writes its configuration, register and example request.
        #[arg(long, default_value = "demo-data")]
        dir: PathBuf,
        /// The DUIS port on 127.0.0.1 (0 = any free port).
        #[arg(long, default_value_t = 8443)]
        port: u16,
        /// The admin port on 127.0.0.1 (0 = any free port).
        #[arg(long, default_value_t = 9090)]
        admin_port: u16,
        /// The demo Users' Receive Response Service port on 127.0.0.1 (0 = any free port).
        #[arg(long, default_value_t = 8444)]
        receiver_port: u16,
        /// The address all three listen on: 0.0.0.0 to be reached from outside (a container).
        #[arg(long, default_value = "127.0.0.1")]
        bind: IpAddr,
        /// More than 1: that many gateway processes in cluster mode on free ports, sharing
        /// their state through a throwaway PostgreSQL (`initdb` and `nats-server` needed).
        #[arg(long, default_value_t = 1)]
        instances: usize,
    },
    /// Sign a DUIS message (a file or standard input) with an XML-signing key; writes the signed
    /// message to standard output. Any signature it carries (a template's placeholder) is replaced.
    /// `dccgw sign serve` does the same (and verifies) over HTTP.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Sign {
        #[command(subcommand)]
        command: Option<SignCommand>,
        /// The signer's private key (PKCS#8 PEM).
        #[arg(long, required = true)]
        key: Option<PathBuf>,
        /// The signer's certificate (named in KeyInfo by issuer and serial).
        #[arg(long, required = true)]
        cert: Option<PathBuf>,
        /// Set the RequestID's counter to the current time in epoch milliseconds first.
        #[arg(long)]
        stamp_counter: bool,
        /// The message (default: standard input).
        input: Option<PathBuf>,
    },
    /// Verify a DUIS message's signature. Exit 0 valid, 1 invalid signature, 3 unknown
    /// certificate, 4 malformed input, 5 certificate not acceptable (expired, not chained),
    /// 6 something could not be read (nothing was verified).
    Verify {
        /// A directory of signing certificates (PEM, searched recursively).
        #[arg(long)]
        certs: PathBuf,
        /// Trust anchors (CA certificates, PEM) the certificate must chain to; none: not checked.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// The message (default: standard input).
        input: Option<PathBuf>,
    },
    /// Sign the pre-command of a Transform's answer (a critical request's signed I0) with a
    /// Digital Signing key, and write the request that sends it back (Command Variant 5 by
    /// default) to standard output: unsigned, ready for `dccgw sign`, or XML-signed.
    SignPrecommand {
        /// The User's Digital Signing private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// The User's Digital Signing certificate (`OU=02` or `03`).
        #[arg(long)]
        cert: PathBuf,
        /// 5 (to the device), 6 (for local delivery) or 7 (both).
        #[arg(long, default_value_t = 5)]
        command_variant: u8,
        /// XML-sign the request with this User XML-signing key …
        #[arg(long, requires = "xml_cert")]
        xml_key: Option<PathBuf>,
        /// … and certificate.
        #[arg(long, requires = "xml_key")]
        xml_cert: Option<PathBuf>,
        /// The Transform's answer (default: standard input).
        input: Option<PathBuf>,
    },
    /// Run the simulated comms-hub network as its own process, for `[routing] hub = "remote"`.
    Commshub {
        /// The hub process's configuration (TOML): `listen` (its address), `acb_cert` (the
        /// broker certificate it trusts), the device registers, and the simulator's behaviour
        /// (the keys of `[routing] hub_config`).
        #[arg(long)]
        config: PathBuf,
    },
    /// The dev PKI in the SMKI Organisation profile.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// The audit trail: check its hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Monthly reports from the audit trail.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Dated rule sets: a new version checked against the current ones.
    Rules {
        #[command(subcommand)]
        command: tools::rules_check::RulesCommand,
    },
    /// Cluster mode: the PostgreSQL that several instances share.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum ClusterCommand {
    /// Create the schema in `[cluster] postgres_url` and load the registers and Users'
    /// certificates the configuration names into it (once: a loaded database is refused).
    Init {
        /// The configuration file (TOML), with a `[cluster]` section.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check every record's hash chain in an audit directory. Exit 0 intact (an interrupted
    /// last write is reported, not counted as damage), 1 broken (the first broken record is
    /// named), 6 the directory or a file could not be read (nothing was verified).
    Verify {
        /// The audit directory (`[audit] dir`; by default `audit/` under `[state] dir`).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print every configuration key with its default and bound, as annotated TOML.
    Defaults {
        /// Print the Markdown reference (docs/configuration.md) instead.
        #[arg(long)]
        markdown: bool,
    },
    /// Check a configuration file without starting: its keys (and DCCGW_ overrides), and the
    /// certificates, keys and files it names. Exit 0 valid, 1 not.
    Check {
        /// The configuration file (TOML).
        config: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum SignCommand {
    /// Sign and verify over HTTP, as the DCC signing tool's HTTP mode: POST /sign and
    /// POST /verify with {"message": "<base64 XML>"}. No authentication: keep it on loopback.
    Serve {
        /// The address to listen on, e.g. 127.0.0.1:8089.
        #[arg(long)]
        listen: SocketAddr,
        /// A signing key (PKCS#8 PEM); give one per User, each with its --cert.
        #[arg(long, required = true)]
        key: Vec<PathBuf>,
        /// The key's certificate; messages are signed with the key whose certificate's User ID
        /// is the RequestID's originator.
        #[arg(long, required = true)]
        cert: Vec<PathBuf>,
        /// For /verify: a directory of signing certificates (PEM, searched recursively).
        #[arg(long)]
        certs: PathBuf,
        /// For /verify: trust anchors the certificate must chain to.
        #[arg(long)]
        trust: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum ReportCommand {
    /// Share of on-demand Service Responses within their Target Response Time, per SRV family.
    Performance(ReportArgs),
    /// Per User: requests per SRV, bytes in and out, messages delivered.
    Usage(ReportArgs),
}

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// The month, YYYY-MM (UTC).
    #[arg(long)]
    pub(crate) month: String,
    /// The gateway's configuration: the audit directory and the targets come from it.
    #[arg(long, required_unless_present = "dir")]
    pub(crate) config: Option<PathBuf>,
    /// The audit directory (overrides the configuration's).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Text for people, JSON for programs.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub(crate) format: ReportFormat,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ReportFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum PkiCommand {
    /// Generate a CA, the gateway's certificates and the demo Users' certificates.
    Init {
        /// The directory to write them to (made if missing; see certs/README.md).
        #[arg(long, default_value = "certs/dev")]
        out: PathBuf,
    },
}

//! The `dccgw` command: serve, demo, and the tools around them. `anyhow` lives only here.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use time::OffsetDateTime;

use dccgw::config::Config;
use dccgw::{audit, demo, pki, report, server, tools};

#[derive(Parser)]
#[command(
    name = "dccgw",
    version,
    about = "A DCC User Gateway for the GB smart-metering network"
)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
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
    /// certificate, 4 malformed input, 5 certificate not acceptable (expired, not chained).
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
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every record's hash chain in an audit directory. Exit 0 intact (an interrupted
    /// last write is reported, not counted as damage), 1 broken (the first broken record is
    /// named).
    Verify {
        /// The audit directory (`[audit] dir`; by default `audit/` under `[state] dir`).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
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
enum SignCommand {
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
enum ReportCommand {
    /// Share of on-demand Service Responses within their Target Response Time, per SRV family.
    Performance(ReportArgs),
    /// Per User: requests per SRV, bytes in and out, messages delivered.
    Usage(ReportArgs),
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The month, YYYY-MM (UTC).
    #[arg(long)]
    month: String,
    /// The gateway's configuration: the audit directory and the targets come from it.
    #[arg(long, required_unless_present = "dir")]
    config: Option<PathBuf>,
    /// The audit directory (overrides the configuration's).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Text for people, JSON for programs.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Generate a CA, the gateway's certificates and the demo Users' certificates.
    Init {
        /// The directory to write them to (made if missing; see certs/README.md).
        #[arg(long, default_value = "certs/dev")]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(&config, std::env::vars())
                .with_context(|| format!("loading {}", config.display()))?;
            runtime()?.block_on(serve(config, None))
        }
        Command::Config { command } => config_command(command),
        Command::Demo {
            certs,
            dir,
            port,
            admin_port,
            receiver_port,
            bind,
        } => {
            let localhost = bind;
            runtime()?.block_on(async move {
                let now = OffsetDateTime::now_utc();
                demo::ensure_pki(&certs, now)?;
                // The Receive Response Service listens first: the register names its port.
                let mut plan = demo::DemoPlan {
                    certs,
                    dir,
                    addr: SocketAddr::new(localhost, port),
                    admin_addr: SocketAddr::new(localhost, admin_port),
                    receiver_addr: SocketAddr::new(localhost, receiver_port),
                };
                let receiver = start_demo_receiver(&plan).await?;
                plan.receiver_addr = receiver.local_addr();
                let files = demo::prepare(&plan, now)?;
                let config = Config::load(&files.config, std::env::vars())
                    .with_context(|| format!("loading {}", files.config.display()))?;
                let result = serve(config, Some((plan, files))).await;
                receiver.stop().await;
                result
            })
        }
        Command::Commshub { config } => {
            let text = std::fs::read_to_string(&config)
                .with_context(|| format!("reading {}", config.display()))?;
            let config: dccgw::commshub::ServeConfig =
                toml::from_str(&text).with_context(|| format!("parsing {}", config.display()))?;
            runtime()?.block_on(dccgw::commshub::serve(config))?;
            Ok(())
        }
        Command::Sign {
            command: Some(command),
            ..
        } => sign_serve(command),
        Command::Sign {
            command: None,
            key,
            cert,
            stamp_counter,
            input,
        } => {
            let (Some(key), Some(cert)) = (key, cert) else {
                anyhow::bail!("give --key and --cert");
            };
            let message = tools::read_input(input.as_deref())?;
            let counter = stamp_counter.then(|| {
                // Milliseconds since 1970 fit a u64 until the year 584 million.
                (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64
            });
            let signed = tools::sign(&message, &key, &cert, counter)?;
            print!("{signed}");
            Ok(())
        }
        Command::Verify {
            certs,
            trust,
            input,
        } => {
            let message = tools::read_input(input.as_deref())?;
            if trust.is_empty() {
                eprintln!("note: no --trust given; the certificate's chain is not checked");
            }
            let (exit, sentence) =
                tools::verify(&message, &certs, &trust, OffsetDateTime::now_utc())?;
            eprintln!("{sentence}");
            std::process::exit(exit as i32);
        }
        Command::Audit {
            command: AuditCommand::Verify { dir },
        } => audit_verify(&dir),
        Command::Report { command } => {
            let (args, performance) = match command {
                ReportCommand::Performance(a) => (a, true),
                ReportCommand::Usage(a) => (a, false),
            };
            run_report(&args, performance)
        }
        Command::Rules { command } => {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            std::process::exit(tools::rules_check::run(command, now))
        }
        Command::Pki {
            command: PkiCommand::Init { out },
        } => {
            let made = pki::init(&out, OffsetDateTime::now_utc())
                .with_context(|| format!("making the dev PKI in {}", out.display()))?;
            println!(
                "Dev PKI written to {} (see certs/README.md).",
                made.dir.display()
            );
            Ok(())
        }
    }
}

/// `dccgw config defaults|check`.
fn config_command(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Defaults { markdown: true } => {
            print!("{}", dccgw::config::reference::markdown());
            Ok(())
        }
        ConfigCommand::Defaults { markdown: false } => {
            print!("{}", dccgw::config::reference::defaults_toml());
            Ok(())
        }
        ConfigCommand::Check { config: path } => {
            let checked = Config::load(&path, std::env::vars())
                .map_err(anyhow::Error::from)
                .and_then(|c| dccgw::config::check(&c).map_err(anyhow::Error::from));
            match checked {
                Ok(done) => {
                    println!("{} is valid:", path.display());
                    for line in done {
                        println!("  {line}");
                    }
                    Ok(())
                }
                Err(e) => {
                    eprintln!("{} is not valid: {e:#}", path.display());
                    std::process::exit(1);
                }
            }
        }
    }
}

/// `dccgw sign serve`.
fn sign_serve(command: SignCommand) -> anyhow::Result<()> {
    let SignCommand::Serve {
        listen,
        key,
        cert,
        certs,
        trust,
    } = command;
    anyhow::ensure!(key.len() == cert.len(), "give one --cert for each --key");
    let pairs: Vec<_> = key.into_iter().zip(cert).collect();
    let service = tools::sign_serve::SignService::load(&pairs, &certs, &trust)?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let users: Vec<String> = service.users().iter().map(|u| u.to_string()).collect();
        println!(
            "dccgw sign serve is listening on http://{}: POST /sign, POST /verify (signing for {}).",
            listener.local_addr()?,
            users.join(", ")
        );
        tokio::select! {
            _ = tools::sign_serve::serve(listener, std::sync::Arc::new(service)) => {}
            _ = wait_for_signal() => {}
        }
        Ok(())
    })
}

/// `dccgw audit verify DIR`.
fn audit_verify(dir: &std::path::Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    match audit::verify_dir(dir) {
        Ok(v) => {
            let head = audit::chain::hex(&v.head);
            println!(
                "Audit trail intact: {} records in {} files, sequence {} to {}, head {head} (checked in {:.1} s).",
                v.records,
                v.files,
                v.first_seq.map_or("-".into(), |s| s.to_string()),
                v.last_seq.map_or("-".into(), |s| s.to_string()),
                started.elapsed().as_secs_f64(),
            );
            if !v.from_genesis {
                println!("The first file present does not start the trail (older files removed); the chain is proved from its opening on.");
            }
            if let Some(t) = v.torn_tail {
                println!(
                    "Torn tail: {} bytes at offset {} of {} are an interrupted write (no line end), not a record; the gateway cuts them at its next start.",
                    t.bytes,
                    t.offset,
                    t.file.display()
                );
            }
            Ok(())
        }
        Err(audit::AuditError::Broken(b)) => {
            println!("Audit trail BROKEN: {b}");
            std::process::exit(1);
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// `dccgw report performance|usage`.
fn run_report(args: &ReportArgs, performance: bool) -> anyhow::Result<()> {
    let month: report::Month = args.month.parse()?;
    let config = match &args.config {
        Some(path) => Some(
            Config::load(path, std::env::vars())
                .with_context(|| format!("loading {}", path.display()))?,
        ),
        None => None,
    };
    let dir = match (&args.dir, &config) {
        (Some(dir), _) => dir.clone(),
        (None, Some(c)) => c.audit.dir(&c.state),
        (None, None) => anyhow::bail!("give --config or --dir"),
    };
    let targets = config.map(|c| c.audit.targets).unwrap_or_default();
    let json = matches!(args.format, ReportFormat::Json);
    let out = if performance {
        let r = report::performance(&dir, month, &targets)?;
        if json {
            serde_json::to_string_pretty(&r)?
        } else {
            report::performance_text(&r)
        }
    } else {
        let r = report::usage(&dir, month)?;
        if json {
            serde_json::to_string_pretty(&r)?
        } else {
            report::usage_text(&r)
        }
    };
    println!("{out}");
    Ok(())
}

/// The demo Users' Receive Response Service: accepts the gateway's deliveries (client
/// certificate role 04) and writes each to its own file.
async fn start_demo_receiver(plan: &demo::DemoPlan) -> anyhow::Result<dccgw::receiver::Receiver> {
    let certs = std::path::absolute(&plan.certs).unwrap_or_else(|_| plan.certs.clone());
    let mut config = dccgw::receiver::ReceiverConfig::new(
        plan.receiver_addr,
        certs.join("server.pem"),
        certs.join("server.key.pem"),
        vec![certs.join("ca.pem")],
    );
    config.dir = Some(demo::received_dir(plan));
    dccgw::receiver::Receiver::start(config, None)
        .await
        .context("starting the demo Receive Response Service")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn serve(
    config: Config,
    demo: Option<(demo::DemoPlan, demo::DemoFiles)>,
) -> anyhow::Result<()> {
    let running = server::start(&config)
        .await
        .context("starting the gateway")?;
    if let Some((plan, files)) = demo {
        let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("dccgw"));
        println!(
            "{}",
            demo::banner(
                &plan,
                &files,
                &me,
                reachable(running.addr),
                reachable(running.admin_addr)
            )
        );
    }
    let stop = running.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Shutdown signal received; draining.");
        let _ = stop.send(true);
    });
    running.wait().await;
    Ok(())
}

/// An address a client on this machine can reach: the loopback one for an unspecified bind
/// (`0.0.0.0`), whose certificate names `127.0.0.1`.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// SIGTERM or Ctrl-C.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DCCGW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log written to a file or a pipe carries no escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

//! The `dccgw` command: serve, demo, and the tools around them. `anyhow` lives only here.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use std::io::Write as _;

use anyhow::Context;
use clap::Parser;
use time::OffsetDateTime;

use dccgw::config::Config;
use dccgw::{audit, demo, pki, report, server, tools};

#[path = "main/cli.rs"]
mod cli;

use cli::{
    AuditCommand, Cli, ClusterCommand, Command, ConfigCommand, LogFormat, PkiCommand, ReportArgs,
    ReportCommand, ReportFormat, SignCommand,
};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(&config, std::env::vars())
                .with_context(|| format!("loading {}", config.display()))?;
            serve_runtime(&config.runtime)?.block_on(serve(config, None))
        }
        Command::Config { command } => config_command(command),
        Command::Demo {
            certs,
            dir,
            port,
            admin_port,
            receiver_port,
            bind,
            instances,
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
                let result = if instances > 1 {
                    demo_cluster(&plan, &files, instances, receiver.local_addr()).await
                } else {
                    serve(config, Some((plan, files))).await
                };
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
        } => verify(&certs, &trust, input.as_deref()),
        Command::SignPrecommand {
            key,
            cert,
            command_variant,
            xml_key,
            xml_cert,
            input,
        } => {
            let keys = tools::PreCommandKeys {
                key: &key,
                cert: &cert,
                xml: xml_key.as_deref().zip(xml_cert.as_deref()),
            };
            sign_precommand(&keys, command_variant, input.as_deref())
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
        Command::Cluster {
            command: ClusterCommand::Init { config },
        } => {
            let config = Config::load(&config, std::env::vars())
                .with_context(|| format!("loading {}", config.display()))?;
            let loaded = runtime()?.block_on(tools::cluster_init::run(&config))?;
            println!(
                "Cluster initialised: {} users, {} devices, {} registrations, {} certificates.",
                loaded.users, loaded.devices, loaded.registrations, loaded.certificates
            );
            Ok(())
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

/// `dccgw sign-precommand`: the signed pre-command's request on standard output.
fn sign_precommand(
    keys: &tools::PreCommandKeys<'_>,
    command_variant: u8,
    input: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let response = tools::read_input(input)?;
    let variant = dccgw::domain::CommandVariant::try_from(command_variant)
        .map_err(|e| anyhow::anyhow!("--command-variant: {e}"))?;
    print!("{}", tools::sign_precommand(&response, keys, variant)?);
    Ok(())
}

/// `dccgw verify`: exits with the verdict's code, or 6 when something could not be read.
fn verify(certs: &std::path::Path, trust: &[PathBuf], input: Option<&std::path::Path>) -> ! {
    let verdict = tools::read_input(input).and_then(|message| {
        if trust.is_empty() {
            let _ = writeln!(
                std::io::stderr(),
                "note: no --trust given; the certificate's chain is not checked"
            );
        }
        tools::verify(&message, certs, trust, OffsetDateTime::now_utc())
    });
    let (exit, sentence) = match verdict {
        Ok(verdict) => verdict,
        // Reading failed: its own exit code, never one of the verdicts'.
        Err(e) => (
            tools::VerifyExit::CannotRead,
            format!("cannot verify: {e:#}"),
        ),
    };
    let _ = writeln!(std::io::stderr(), "{sentence}");
    std::process::exit(exit as i32);
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
        Err(e) => {
            // Reading failed: its own exit code, never the verdict "broken".
            let e = anyhow::Error::new(e).context(format!("reading {}", dir.display()));
            let _ = writeln!(std::io::stderr(), "Error: {e:#}");
            std::process::exit(tools::AUDIT_CANNOT_READ);
        }
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
/// `dccgw demo --instances N`: the cluster, its banner, and a wait for Ctrl-C.
async fn demo_cluster(
    plan: &demo::DemoPlan,
    files: &demo::DemoFiles,
    instances: usize,
    receiver: SocketAddr,
) -> anyhow::Result<()> {
    let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("dccgw"));
    let cluster = demo::cluster::start(&plan.dir, &files.config, &me, instances)
        .await
        .context("starting the demo cluster")?;
    let banner = demo::cluster::banner(&cluster, receiver, &plan.dir);
    let _ = writeln!(std::io::stdout(), "{banner}");
    wait_for_signal().await;
    tokio::task::block_in_place(|| drop(cluster));
    Ok(())
}

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

/// `serve`'s runtime: its worker threads as `[runtime]` says (one per core by default).
fn serve_runtime(config: &dccgw::config::Runtime) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers())
        .enable_all()
        .build()
        .context("starting the async runtime")
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
        let banner = demo::banner(
            &plan,
            &files,
            &me,
            reachable(running.addr),
            reachable(running.admin_addr),
        );
        // Standard output may be a pipe nobody reads any more: the gateway runs on regardless.
        let _ = writeln!(std::io::stdout(), "{banner}");
    }
    #[cfg(unix)]
    {
        // SIGHUP reloads the certificates, trust anchors and CRLs (a failure is logged and
        // changes nothing).
        use tokio::signal::unix::{signal, SignalKind};
        let reloader = running.reloader.clone();
        if let Ok(mut hangups) = signal(SignalKind::hangup()) {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    let _ = reloader.reload("signal").await;
                }
            });
        }
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
    // Colours only on a terminal: a log written to a file or a pipe carries no escape codes. A
    // log line that cannot be written (standard error is a pipe whose reader has gone) is
    // dropped: the gateway keeps serving, and does not try to report the failure on the same
    // standard error (which would panic).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

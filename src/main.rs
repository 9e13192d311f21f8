//! The `dccgw` command: serve, demo, and the tools around them. `anyhow` lives only here.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use time::OffsetDateTime;

use dccgw::config::Config;
use dccgw::{demo, pki, server, tools};

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
        #[arg(long)]
        config: PathBuf,
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
    },
    /// Sign a DUIS message (a file or standard input) with an XML-signing key; writes the signed
    /// message to standard output. Any signature it carries (a template's placeholder) is replaced.
    Sign {
        /// The signer's private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// The signer's certificate (named in KeyInfo by issuer and serial).
        #[arg(long)]
        cert: PathBuf,
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
    /// Run the simulated comms-hub network as its own process (TOML: `commshub::ServeConfig`).
    Commshub {
        #[arg(long)]
        config: PathBuf,
    },
    /// The dev PKI in the SMKI Organisation profile.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Generate a CA, the gateway's certificates and the demo Users' certificates.
    Init {
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
        Command::Demo {
            certs,
            dir,
            port,
            admin_port,
        } => {
            let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
            let plan = demo::DemoPlan {
                certs,
                dir,
                addr: SocketAddr::new(localhost, port),
                admin_addr: SocketAddr::new(localhost, admin_port),
            };
            let files = demo::prepare(&plan, OffsetDateTime::now_utc())?;
            let config = Config::load(&files.config, std::env::vars())
                .with_context(|| format!("loading {}", files.config.display()))?;
            runtime()?.block_on(serve(config, Some((plan, files))))
        }
        Command::Commshub { config } => {
            let text = std::fs::read_to_string(&config)
                .with_context(|| format!("reading {}", config.display()))?;
            let config: dccgw::commshub::ServeConfig =
                toml::from_str(&text).with_context(|| format!("parsing {}", config.display()))?;
            runtime()?.block_on(dccgw::commshub::serve(config))
        }
        Command::Sign {
            key,
            cert,
            stamp_counter,
            input,
        } => {
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
            demo::banner(&plan, &files, &me, running.addr, running.admin_addr)
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

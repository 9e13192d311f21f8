//! One load run, end to end: the prepared Users (keys, TLS clients), a plan for a load, its
//! requests signed, the run against a target, its summary. Shared by `run` and `bench`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use time::OffsetDateTime;

use dccgw::domain::{ResponseCode, SmkiRole, UserId};
use dccgw::duis::{self, ResponseHeaderOut, ResponsePayload};
use dccgw::signer::{Signer, SignerError};
use dccgw::xmldsig::{self, c14n::C14nLimits, SignError};

use crate::client::{self, RunInput, SecondRequest, Target};
use crate::critical::UserKeys;
use crate::plan::{self, Plan, PlanError};
use crate::population::Population;
use crate::receiver::{Deliveries, Receiver};
use crate::scenario::{Load, Scenario};
use crate::setup::{self, SetupError, Workdir};
use crate::stats::{self, RunSummary};
use crate::tlsconf::{self, TlsConfError};

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error(transparent)]
    Tls(#[from] TlsConfError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("signing the requests failed")]
    Sign(#[from] SignError),
}

/// The Users, ready to send.
pub struct Prepared {
    pub scenario: Scenario,
    pub workdir: Workdir,
    pub pop: Population,
    originators: Arc<Vec<UserId>>,
    keys: Arc<UserKeys>,
    clients: Vec<Arc<ClientConfig>>,
}

/// A plan and its signed requests.
pub struct Signed {
    pub plan: Arc<Plan>,
    pub bodies: Arc<Vec<Bytes>>,
}

impl Prepared {
    /// Makes what the work directory lacks and loads every User's keys.
    pub fn new(scenario: Scenario, workdir: &Path) -> Result<Self, RunnerError> {
        let workdir = Workdir::new(workdir);
        let pop = Population::new(scenario.population.devices, scenario.population.other_users);
        setup::prepare(&workdir, &pop, OffsetDateTime::now_utc())?;
        let ca = workdir.pki("ca");
        let mut signers = Vec::with_capacity(pop.users.len());
        let mut digital = Vec::with_capacity(pop.users.len());
        let mut clients = Vec::with_capacity(pop.users.len());
        for user in &pop.users {
            signers.push(Signer::load(
                &workdir.user(user, "xml-sign.key.pem"),
                &workdir.user(user, "xml-sign.pem"),
                Some(SmkiRole::XmlSigning),
            )?);
            digital.push(if user.signs_digitally() {
                Some(Signer::load(
                    &workdir.user(user, "digital-signing.key.pem"),
                    &workdir.user(user, "digital-signing.pem"),
                    Some(user.tls_role()),
                )?)
            } else {
                None
            });
            clients.push(tlsconf::client(
                &ca,
                &workdir.user(user, "tls.pem"),
                &workdir.user(user, "tls.key.pem"),
                scenario.connection.tls_resumption,
            )?);
        }
        let originators = Arc::new(pop.users.iter().map(|u| u.id).collect());
        Ok(Self {
            scenario,
            workdir,
            pop,
            originators,
            keys: Arc::new(UserKeys {
                xml: signers,
                digital,
            }),
            clients,
        })
    }

    /// Plans `load` and signs its requests. Counters start at the current time in
    /// microseconds, above any earlier run's against the same gateway state.
    pub fn sign(&self, load: &Load) -> Result<Signed, RunnerError> {
        let base =
            u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000).unwrap_or(1);
        let plan = plan::build(
            load,
            &self.scenario.mix,
            &self.pop,
            self.scenario.seed,
            base,
        )?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let bodies = crate::requests::presign(
            &plan,
            &self.scenario.mix,
            &self.pop,
            &self.keys.xml,
            threads,
        )?;
        Ok(Signed {
            plan: Arc::new(plan),
            bodies: Arc::new(bodies),
        })
    }

    /// Runs `signed` against `addr`; with a receiver, counts the asynchronous responses that
    /// arrive until `grace` after the last answer.
    pub async fn run(
        &self,
        signed: &Signed,
        addr: SocketAddr,
        receiver: Option<&Receiver>,
        grace: Duration,
    ) -> RunSummary {
        self.run_with_results(signed, addr, receiver, grace).await.0
    }

    /// As [`Prepared::run`], with every request's result beside the summary.
    pub async fn run_with_results(
        &self,
        signed: &Signed,
        addr: SocketAddr,
        receiver: Option<&Receiver>,
        grace: Duration,
    ) -> (RunSummary, Vec<client::SyncResult>) {
        let input = RunInput {
            plan: signed.plan.clone(),
            bodies: signed.bodies.clone(),
            paths: self
                .scenario
                .mix
                .iter()
                .map(|m| m.service().path())
                .collect(),
            second: self
                .scenario
                .mix
                .iter()
                .map(|m| {
                    m.critical().map(|cv| SecondRequest {
                        cv,
                        path: crate::scenario::service_of(cv).path(),
                    })
                })
                .collect(),
            originators: self.originators.clone(),
            keys: self.keys.clone(),
            clients: self.clients.clone(),
            connection: self.scenario.connection,
            target: Target {
                addr,
                server_name: ServerName::try_from("localhost").map_or_else(
                    |_| ServerName::IpAddress(addr.ip().into()),
                    |n| n.to_owned(),
                ),
            },
        };
        let mut table: Option<Arc<Deliveries>> = None;
        let out = client::run(input, |start: Instant| {
            if let Some(receiver) = receiver {
                let t = Arc::new(Deliveries::new(
                    signed.plan.clone(),
                    self.originators.clone(),
                    start,
                ));
                receiver.set(Some(t.clone()));
                table = Some(t);
            }
        })
        .await;
        if let Some(receiver) = receiver {
            tokio::time::sleep(grace).await;
            receiver.set(None);
        }
        let summary = stats::summarise(
            &signed.plan,
            &self.scenario.mix,
            &out.results,
            out.elapsed.as_secs_f64(),
            table.as_deref(),
        );
        (summary, out.results)
    }

    /// The references' fixed answer: a signed I99 acknowledgement as the gateway writes one,
    /// so that the bytes on the wire match.
    pub fn fixed_answer(&self) -> Result<String, RunnerError> {
        let signer = Signer::load(
            &self.workdir.pki_key("dcc-xml-sign"),
            &self.workdir.pki("dcc-xml-sign"),
            Some(SmkiRole::DccXmlSigning),
        )?;
        let entry = &self.scenario.mix[0];
        let header = ResponseHeaderOut {
            request_id: Some(dccgw::domain::RequestId {
                originator: self.originators[0],
                target: dccgw::domain::DCC_ID,
                counter: 1,
            }),
            response_id: None,
            code: ResponseCode::I99,
            date_time: OffsetDateTime::now_utc(),
        };
        let unsigned = duis::write_response(
            &header,
            entry.srv.service_reference(),
            entry.srv,
            &ResponsePayload::None,
        );
        Ok(xmldsig::sign_document(
            &unsigned,
            &signer,
            &C14nLimits::default(),
        )?)
    }

    /// How many Users have requests in a plan (the connections a run keeps open).
    pub fn lanes(&self, plan: &Plan) -> usize {
        plan.lanes(self.pop.users.len())
            .iter()
            .filter(|l| !l.is_empty())
            .count()
    }
}

//! The generator's Receive Response Service: an mTLS HTTPS server (the client must present a
//! certificate chained to the work directory's CA, as the gateway's delivery client does) that
//! accepts the gateway's POSTs — signed DUIS `sr:Response` documents — and matches each Service
//! Response's RequestID to the request's due time. Alerts are counted by code. Answers 200 to
//! everything it could read, 400 to what it could not.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use dccgw::domain::{RequestId, UserId};

use crate::outcome::element_text;
use crate::plan::Plan;

/// Largest delivery read; larger ones are refused (413) unread.
const MAX_DELIVERY_BYTES: usize = 4 << 20;

/// What a delivered document is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A Service Response to a request (any code: I0, E20, E21, …).
    Response {
        request_id: RequestId,
        code: Option<String>,
    },
    /// A command for local delivery (`LocalCommand`, Command Variants 2, 3, 6, 7): the User's
    /// copy, not the device's answer.
    LocalCommand,
    /// A Device Alert, future-dated alert or DCC Alert, by its code.
    Alert { code: String },
    /// Not a DUIS response this tool can read.
    Unreadable,
}

/// Classifies a delivered body. A scan for the few elements that matter, bounded by the body.
pub fn parse_delivery(body: &[u8]) -> Delivery {
    let Ok(text) = std::str::from_utf8(body) else {
        return Delivery::Unreadable;
    };
    for (message, code) in [
        ("DeviceAlertMessage", "AlertCode"),
        ("FutureDatedDeviceAlertMessage", "FutureDatedAlertCode"),
        ("DCCAlertMessage", "DCCAlertCode"),
    ] {
        if element_text(text, message).is_some() || text.contains(&format!(":{message}>")) {
            let code = element_text(text, code).unwrap_or("?");
            return Delivery::Alert {
                code: code.chars().take(16).collect(),
            };
        }
    }
    if text.contains(":LocalCommand>") {
        return Delivery::LocalCommand;
    }
    match element_text(text, "RequestID").and_then(|t| t.parse().ok()) {
        Some(request_id) => Delivery::Response {
            request_id,
            code: element_text(text, "ResponseCode").map(|c| c.chars().take(16).collect()),
        },
        None => Delivery::Unreadable,
    }
}

/// One run's expected responses and what arrived.
pub struct Deliveries {
    plan: Arc<Plan>,
    originators: Arc<Vec<UserId>>,
    start: Instant,
    /// Per request: latency from due time in ns, plus one (0 = nothing yet).
    latency: Vec<AtomicU64>,
    pub duplicates: AtomicU64,
    /// Commands for local delivery received (counted apart from Service Responses).
    pub local_commands: AtomicU64,
    pub unmatched: AtomicU64,
    pub unreadable: AtomicU64,
    pub codes: Mutex<BTreeMap<String, u64>>,
    pub alerts: Mutex<BTreeMap<String, u64>>,
}

impl Deliveries {
    /// `originators[u]` is User `u`'s ID; `start` is the plan's time zero.
    pub fn new(plan: Arc<Plan>, originators: Arc<Vec<UserId>>, start: Instant) -> Self {
        let latency = (0..plan.items.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            plan,
            originators,
            start,
            latency,
            duplicates: AtomicU64::new(0),
            local_commands: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
            codes: Mutex::new(BTreeMap::new()),
            alerts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records a delivery that arrived at `at`; whether it was readable.
    pub fn record(&self, delivery: Delivery, at: Instant) -> bool {
        match delivery {
            Delivery::Unreadable => {
                self.unreadable.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            Delivery::LocalCommand => {
                self.local_commands.fetch_add(1, Ordering::Relaxed);
            }
            Delivery::Alert { code } => bump(&self.alerts, code),
            Delivery::Response { request_id, code } => {
                let Some(i) = self.match_request(&request_id) else {
                    self.unmatched.fetch_add(1, Ordering::Relaxed);
                    return true;
                };
                let due = self.start + std::time::Duration::from_nanos(self.plan.items[i].at_ns);
                let ns = u64::try_from(at.saturating_duration_since(due).as_nanos())
                    .unwrap_or(u64::MAX - 1);
                let first = self.latency[i]
                    .compare_exchange(0, ns + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok();
                if first {
                    bump(&self.codes, code.unwrap_or_else(|| "?".into()));
                } else {
                    // Duplicates are allowed (DUIS); the first arrival is the latency.
                    self.duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        true
    }

    fn match_request(&self, id: &RequestId) -> Option<usize> {
        let i = self.plan.index_of_counter(id.counter)?;
        let item = &self.plan.items[i];
        let originator = self.originators.get(item.user as usize)?;
        (*originator == id.originator && item.target == id.target).then_some(i)
    }

    /// Latencies (ns from due time) of the responses received, by request index.
    pub fn latencies(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.latency.iter().enumerate().filter_map(|(i, v)| {
            let v = v.load(Ordering::Relaxed);
            (v != 0).then(|| (i, v - 1))
        })
    }
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: String) {
    // A poisoned map only means another delivery's thread panicked mid-insert; the counts stay
    // usable.
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    *map.entry(key).or_insert(0) += 1;
}

/// The running endpoint; the current run's table is swapped in and out.
pub struct Receiver {
    pub addr: SocketAddr,
    current: Arc<RwLock<Option<Arc<Deliveries>>>>,
}

impl Receiver {
    /// Listens on `addr` (port 0: any) with `tls` until the process ends.
    pub async fn start(addr: SocketAddr, tls: Arc<ServerConfig>) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let current: Arc<RwLock<Option<Arc<Deliveries>>>> = Arc::new(RwLock::new(None));
        let shared = current.clone();
        let acceptor = TlsAcceptor::from(tls);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    // Out of descriptors, say: back off rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let shared = shared.clone();
                        async move {
                            let status = match Limited::new(req.into_body(), MAX_DELIVERY_BYTES)
                                .collect()
                                .await
                            {
                                Ok(body) => {
                                    let at = Instant::now();
                                    let table = shared.read().ok().and_then(|g| g.clone());
                                    let delivery = parse_delivery(&body.to_bytes());
                                    match table {
                                        Some(t) if t.record(delivery, at) => 200,
                                        Some(_) => 400,
                                        // Between runs: accepted, not counted.
                                        None => 200,
                                    }
                                }
                                Err(_) => 413,
                            };
                            let mut answer = hyper::Response::new(Full::new(Bytes::new()));
                            *answer.status_mut() =
                                hyper::StatusCode::from_u16(status).unwrap_or_default();
                            Ok::<_, std::convert::Infallible>(answer)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Receiver { addr, current })
    }

    /// Makes `table` the run deliveries are counted against (`None`: between runs).
    pub fn set(&self, table: Option<Arc<Deliveries>>) {
        if let Ok(mut guard) = self.current.write() {
            *guard = table;
        }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}/", self.addr.port())
    }
}

#[cfg(test)]
mod tests;

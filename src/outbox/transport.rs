//! How a message reaches a User: where (the User's Receive Response Service URL, looked up at
//! each attempt so a changed registration takes effect) and by what ([`Transport`]: HTTPS in
//! production, a channel in-process).

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

use super::message::Message;
use crate::domain::UserId;
use crate::register::PartyRegister;

/// Why one delivery attempt failed. Every one is retried until the hold time runs out.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the User has no Receive Response Service URL registered")]
    NoEndpoint,
    #[error("the User's Receive Response Service URL is not an https:// URL: {url:?}")]
    BadEndpoint { url: String },
    #[error("cannot connect to the User's endpoint")]
    Connect(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the User's endpoint did not answer within {ms} ms")]
    Timeout { ms: u64 },
    #[error("the User's endpoint answered HTTP {0}")]
    Status(u16),
    #[error("the exchange with the User's endpoint broke off")]
    Protocol(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the in-process consumer has gone")]
    Closed,
}

impl TransportError {
    /// Every value [`TransportError::label`] gives.
    pub const LABELS: [&'static str; 7] = [
        "no_endpoint",
        "bad_endpoint",
        "connect",
        "timeout",
        "http_status",
        "protocol",
        "closed",
    ];

    /// The closed set of metric labels.
    pub const fn label(&self) -> &'static str {
        match self {
            Self::NoEndpoint => "no_endpoint",
            Self::BadEndpoint { .. } => "bad_endpoint",
            Self::Connect(_) => "connect",
            Self::Timeout { .. } => "timeout",
            Self::Status(_) => "http_status",
            Self::Protocol(_) => "protocol",
            Self::Closed => "closed",
        }
    }
}

pub type PostFuture<'a> = Pin<Box<dyn Future<Output = Result<(), TransportError>> + Send + 'a>>;

/// Delivers one message to one endpoint; `Ok` means the User accepted it (HTTP 2xx).
pub trait Transport: Send + Sync + 'static {
    fn post<'a>(&'a self, url: &'a str, message: &'a Message) -> PostFuture<'a>;
}

/// Where each User's asynchronous messages go.
pub trait Endpoints: Send + Sync + 'static {
    fn response_url(&self, user: &UserId) -> Option<String>;
}

impl Endpoints for PartyRegister {
    fn response_url(&self, user: &UserId) -> Option<String> {
        self.get(user).and_then(|u| u.response_url.clone())
    }
}

impl<F> Endpoints for F
where
    F: Fn(&UserId) -> Option<String> + Send + Sync + 'static,
{
    fn response_url(&self, user: &UserId) -> Option<String> {
        self(user)
    }
}

/// One message handed to an in-process consumer, which says whether it was accepted.
pub struct Handed {
    pub url: String,
    pub message: Message,
    pub accept: oneshot::Sender<bool>,
}

/// A transport that hands each message to an in-process consumer over a channel: for the
/// in-process demo and load tool, and for tests that drive time (no sockets). The consumer
/// answers `true` (delivered) or `false` (refused); dropping the answer counts as refused.
pub struct ChannelTransport {
    tx: mpsc::Sender<Handed>,
}

impl ChannelTransport {
    /// A transport and the receiving end; `bound` messages may wait unanswered.
    pub fn new(bound: usize) -> (Self, mpsc::Receiver<Handed>) {
        let (tx, rx) = mpsc::channel(bound.max(1));
        (Self { tx }, rx)
    }
}

impl Transport for ChannelTransport {
    fn post<'a>(&'a self, url: &'a str, message: &'a Message) -> PostFuture<'a> {
        Box::pin(async move {
            let (accept, answer) = oneshot::channel();
            let handed = Handed {
                url: url.to_owned(),
                message: message.clone(),
                accept,
            };
            self.tx
                .send(handed)
                .await
                .map_err(|_| TransportError::Closed)?;
            match answer.await {
                Ok(true) => Ok(()),
                Ok(false) => Err(TransportError::Status(503)),
                Err(_) => Err(TransportError::Closed),
            }
        })
    }
}

//! The connection phases of one request: DNS lookup and connector time (TCP connect, plus the TLS
//! handshake for `https`), attributed to the request whose own future did the work.
//!
//! How it is measured without replacing reqwest's transport:
//! - every client gets a resolver ([`TimedResolver`], or the egress policy's resolver, which calls
//!   the same [`lookup`]) that times `getaddrinfo`;
//! - every client's connector is wrapped ([`ConnectTimingLayer`], through
//!   `ClientBuilder::connector_layer`) to time the whole connector call, which runs the lookup,
//!   the TCP connect and, for `https`, the TLS handshake;
//! - both write into a tokio task-local that [`measured`] scopes around one request's send
//!   future. hyper-util polls the connect future inside that future (it races a pool checkout
//!   against the connect with `select`), so the phases land in the right request. When the pool
//!   wins and the started connect is finished in a background task, that task has no scope and
//!   nothing is recorded.
//! - a connection is identified by its local socket address (hyper-util's `HttpInfo`, which is
//!   also on every response it carries). The phases are reported only when the response came on a
//!   connection this request opened itself; otherwise the connection was reused from the pool.
//!
//! TLS cannot be separated from the TCP connect this way (both happen inside reqwest's
//! connector), so `connect_ns` includes the handshake for `https` and `tls_ns` stays `None`.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::nanos;

tokio::task_local! {
    static PHASES: RefCell<Phases>;
}

/// What one request's own future measured.
#[derive(Debug, Default)]
pub(super) struct Phases {
    /// The latest lookup not yet attributed to an opened connection.
    lookup_ns: Option<i64>,
    /// Connections opened (and finished) inside the request's future.
    opened: Vec<Opened>,
}

#[derive(Debug)]
struct Opened {
    local: SocketAddr,
    dns_ns: Option<i64>,
    /// Connector time minus the lookup: TCP connect, plus TLS for `https`.
    connect_ns: i64,
}

/// The phases of the connection that carried a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct ConnectionPhases {
    pub dns_ns: Option<i64>,
    pub connect_ns: Option<i64>,
    /// `None` when the response does not say which connection carried it.
    pub reused: Option<bool>,
}

impl Phases {
    /// The phases of the connection a response came on (`extensions` of that response).
    pub(super) fn for_response(&self, extensions: &::http::Extensions) -> ConnectionPhases {
        let Some(info) = extensions.get::<HttpInfo>() else {
            return ConnectionPhases::default();
        };
        match self
            .opened
            .iter()
            .rev()
            .find(|o| o.local == info.local_addr())
        {
            Some(opened) => ConnectionPhases {
                dns_ns: opened.dns_ns,
                connect_ns: Some(opened.connect_ns),
                reused: Some(false),
            },
            None => ConnectionPhases {
                reused: Some(true),
                ..ConnectionPhases::default()
            },
        }
    }

    /// A lookup that finished but whose connection did not (e.g. the connect was refused).
    pub(super) fn unused_lookup_ns(&self) -> Option<i64> {
        self.lookup_ns
    }
}

/// Runs `send` (one request's send future) with its own phase record and returns both.
pub(super) async fn measured<F: Future>(send: F) -> (F::Output, Phases) {
    PHASES
        .scope(RefCell::new(Phases::default()), async {
            let output = send.await;
            (output, PHASES.with(RefCell::take))
        })
        .await
}

/// Resolves `host` like reqwest's default resolver (`getaddrinfo` on the blocking pool) and
/// records how long it took for the request being sent.
pub(super) async fn lookup(host: &str) -> io::Result<Vec<SocketAddr>> {
    let started = Instant::now();
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let took = nanos(started.elapsed());
    let _ = PHASES.try_with(|p| p.borrow_mut().lookup_ns = Some(took));
    Ok(resolved)
}

/// The resolver of clients without an egress policy: [`lookup`], nothing filtered.
#[derive(Debug)]
pub(super) struct TimedResolver;

impl Resolve for TimedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = lookup(&host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Wraps reqwest's connector to time each connection it opens.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ConnectTimingLayer;

impl<S> tower_layer::Layer<S> for ConnectTimingLayer {
    type Service = TimedConnector<S>;

    fn layer(&self, inner: S) -> TimedConnector<S> {
        TimedConnector { inner }
    }
}

#[derive(Debug, Clone)]
pub(super) struct TimedConnector<S> {
    inner: S,
}

impl<S, R> tower_service::Service<R> for TimedConnector<S>
where
    S: tower_service::Service<R>,
    S::Response: Connection + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: R) -> Self::Future {
        let connecting = self.inner.call(dst);
        Box::pin(async move {
            let started = Instant::now();
            let _ = PHASES.try_with(|p| p.borrow_mut().lookup_ns = None);
            let conn = connecting.await?;
            let took = nanos(started.elapsed());
            let mut extras = ::http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            if let Some(info) = extras.get::<HttpInfo>() {
                let local = info.local_addr();
                let _ = PHASES.try_with(|p| {
                    let mut p = p.borrow_mut();
                    let dns_ns = p.lookup_ns.take();
                    p.opened.push(Opened {
                        local,
                        dns_ns,
                        connect_ns: took.saturating_sub(dns_ns.unwrap_or(0)).max(0),
                    });
                });
            }
            Ok(conn)
        })
    }
}

//! Getting bytes to the target: address parsing, the outbound policy (SSRF guard), TCP, TLS and
//! turning transport failures back into [`ErrorKind`]s.
//!
//! tonic's own connector resolves and connects by itself, which would let a request reach any
//! address a host name resolves to. PRISM therefore gives every channel its own [`Connector`]
//! that checks the host with [`EgressPolicy::check_host`], resolves it, checks **every** resolved
//! address with [`EgressPolicy::check_addr`] (a name that resolves to one public and one internal
//! address must not get through on the internal one) and only then connects. The connector also
//! does TLS itself (rustls with the ring provider): the channel is always created with an
//! `http://` endpoint and an `https://` origin, so tonic's TLS features are never involved and a
//! custom CA or disabled verification needs no tonic support.
//!
//! Failures leave the connector as [`ConnectFailure`]s carrying their kind; tonic wraps them in
//! a `Status`, and [`transport_failure`] digs them (or the io/h2 errors of a broken connection)
//! back out of the status's source chain.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use prism_domain::egress::EgressPolicy;
use prism_domain::execution::ErrorKind;
use prism_domain::request::GrpcTls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::Status;
use tonic::transport::{Channel, Endpoint};
use tower_service::Service;

use crate::error::GrpcRequestError;

/// Where a call goes, parsed from `GrpcSpec::address` and `GrpcSpec::tls`. Also the key of the
/// channel cache: two specs with equal targets share a channel (and its HTTP/2 connection).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    /// Without brackets for IPv6 literals.
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TlsSettings {
    pub ca_pem: Option<String>,
    pub verify: bool,
}

impl Target {
    /// Accepts `host:port`, `[v6]:port`, `http://host[:port]` and `https://host[:port]` (a URL
    /// without a port gets 80/443). TLS is used for `https://` or when `tls.enabled`; an explicit
    /// `http://` together with `tls.enabled` is contradictory and rejected.
    pub(crate) fn parse(address: &str, tls: &GrpcTls) -> Result<Target, GrpcRequestError> {
        let invalid = |why: &str| {
            GrpcRequestError::InvalidAddress(format!(
                "invalid address {address:?}: {why} (expected host:port or an http(s):// URL)"
            ))
        };
        let raw = address.trim();
        if raw.is_empty() {
            return Err(invalid("it is empty"));
        }
        let lower = raw.to_ascii_lowercase();
        let (https, rest) = if lower.starts_with("http://") {
            (Some(false), &raw["http://".len()..])
        } else if lower.starts_with("https://") {
            (Some(true), &raw["https://".len()..])
        } else if let Some((scheme, _)) = raw.split_once("://") {
            return Err(invalid(&format!("unsupported scheme {scheme:?}")));
        } else {
            (None, raw)
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if !path.is_empty() {
            return Err(invalid("gRPC addresses have no path"));
        }
        if authority.contains(['@', '?', '#']) || authority.chars().any(char::is_whitespace) {
            return Err(invalid("unexpected characters"));
        }
        let parsed: http::uri::Authority = authority.parse().map_err(|_| invalid("bad host"))?;
        let host = parsed
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let use_tls = match https {
            Some(false) if tls.enabled => {
                return Err(invalid(
                    "http:// means plaintext but TLS is enabled; use https://",
                ));
            }
            Some(https) => https,
            None => tls.enabled,
        };
        let port = match (parsed.port_u16(), https) {
            (Some(port), _) => port,
            (None, Some(true)) => 443,
            (None, Some(false)) => 80,
            (None, None) => return Err(invalid("missing port")),
        };
        let tls = use_tls.then(|| TlsSettings {
            ca_pem: tls.ca_pem.clone().filter(|pem| !pem.trim().is_empty()),
            verify: tls.verify.unwrap_or(true),
        });
        Ok(Target { host, port, tls })
    }

    /// `host:port`, with brackets around IPv6 literals.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A lazily connecting channel to `target` whose connections go through the policy checks.
/// tonic's reconnect logic calls the connector again after a connection is lost, so every
/// reconnect re-resolves and re-checks.
pub(crate) fn channel(
    target: &Target,
    policy: Arc<EgressPolicy>,
) -> Result<Channel, GrpcRequestError> {
    let tls = match &target.tls {
        None => None,
        Some(settings) => {
            let server_name = ServerName::try_from(target.host.clone()).map_err(|_| {
                GrpcRequestError::InvalidAddress(format!(
                    "{:?} is not a valid TLS server name",
                    target.host
                ))
            })?;
            Some((TlsConnector::from(client_config(settings)?), server_name))
        }
    };
    let authority = target.authority();
    let scheme = if target.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let invalid = |_| GrpcRequestError::InvalidAddress(format!("invalid address {authority:?}"));
    let origin: Uri = format!("{scheme}://{authority}").parse().map_err(invalid)?;
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|_| GrpcRequestError::InvalidAddress(format!("invalid address {authority:?}")))?
        .origin(origin)
        .user_agent(concat!("prism/", env!("CARGO_PKG_VERSION")))
        .map_err(|_| GrpcRequestError::InvalidAddress("invalid user agent".into()))?;
    let connector = Connector {
        inner: Arc::new(ConnectorInner {
            host: target.host.clone(),
            port: target.port,
            tls,
            policy,
        }),
    };
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// The rustls configuration for one set of TLS settings: the given CA (instead of the system
/// roots) or the system roots, or no verification at all; ALPN `h2` as gRPC requires.
fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, GrpcRequestError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let custom_roots = settings.ca_pem.as_deref().map(parse_ca).transpose()?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| GrpcRequestError::InvalidTlsConfig(format!("TLS setup failed: {err}")))?;
    let mut config = if settings.verify {
        let roots = custom_roots.map_or_else(system_roots, Arc::new);
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn parse_ca(pem: &str) -> Result<RootCertStore, GrpcRequestError> {
    let invalid =
        |why: String| GrpcRequestError::InvalidTlsConfig(format!("invalid CA PEM: {why}"));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|err| invalid(err.to_string()))?;
        roots
            .add(cert)
            .map_err(|err| invalid(format!("not a usable CA certificate: {err}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("no CERTIFICATE block found".into()));
    }
    Ok(roots)
}

/// The operating system's trust store (via `rustls-native-certs`), loaded once per process.
/// Unreadable entries are skipped; with none at all, every verified handshake fails with an
/// unknown-issuer error, which is reported as a TLS failure.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            Arc::new(roots)
        })
        .clone()
}

/// `verify: false`: any certificate is accepted, but handshake signatures are still checked so
/// the connection is at least encrypted to whoever holds the presented key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a connection could not be made, with the [`ErrorKind`] it maps to.
#[derive(Debug, Clone)]
pub(crate) struct ConnectFailure {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for ConnectFailure {}

impl ConnectFailure {
    fn new(kind: ErrorKind, message: String) -> Self {
        Self { kind, message }
    }
}

/// The tower service tonic calls for every new connection of one channel.
#[derive(Clone)]
struct Connector {
    inner: Arc<ConnectorInner>,
}

struct ConnectorInner {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    policy: Arc<EgressPolicy>,
}

impl Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectFailure>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectFailure>> {
        Poll::Ready(Ok(()))
    }

    /// The URI is the channel's endpoint; the connector already knows its target.
    fn call(&mut self, _uri: Uri) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.connect().await.map(TokioIo::new) })
    }
}

impl ConnectorInner {
    async fn connect(&self) -> Result<Stream, ConnectFailure> {
        let host = self.host.as_str();
        let policy = &self.policy;
        let blocked = |err: prism_domain::egress::Blocked| {
            ConnectFailure::new(ErrorKind::Blocked, err.to_string())
        };
        if !policy.is_open() {
            policy.check_host(host).map_err(blocked)?;
        }
        let resolved: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, self.port)],
            Err(_) => tokio::net::lookup_host((host, self.port))
                .await
                .map_err(|err| {
                    ConnectFailure::new(ErrorKind::Dns, format!("could not resolve {host}: {err}"))
                })?
                .collect(),
        };
        if resolved.is_empty() {
            let message = format!("could not resolve {host}: no addresses");
            return Err(ConnectFailure::new(ErrorKind::Dns, message));
        }
        let mut allowed = Vec::with_capacity(resolved.len());
        let mut first_blocked = None;
        for addr in resolved {
            if policy.is_open() {
                allowed.push(addr);
                continue;
            }
            match policy.check_addr(host, addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(err) => {
                    first_blocked.get_or_insert(err);
                }
            }
        }
        if allowed.is_empty()
            && let Some(err) = first_blocked
        {
            return Err(blocked(err));
        }

        let mut last_error = None;
        let mut tcp = None;
        for addr in allowed {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(err) => last_error = Some((addr, err)),
            }
        }
        let tcp = match (tcp, last_error) {
            (Some(tcp), _) => tcp,
            (None, Some((addr, err))) => return Err(connect_failure(host, addr, &err)),
            (None, None) => {
                let message = format!("could not connect to {host}: no address to try");
                return Err(ConnectFailure::new(ErrorKind::Connect, message));
            }
        };
        // gRPC is request/response over small frames; Nagle's delay would only add latency.
        let _ = tcp.set_nodelay(true);

        let Some((connector, server_name)) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let tls = connector
            .connect(server_name.clone(), tcp)
            .await
            .map_err(|err| {
                ConnectFailure::new(
                    ErrorKind::Tls,
                    format!("TLS handshake with {host} failed: {err}"),
                )
            })?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

fn connect_failure(host: &str, addr: SocketAddr, err: &io::Error) -> ConnectFailure {
    let kind = match err.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Connect,
    };
    let target = if host == addr.ip().to_string() {
        addr.to_string()
    } else {
        format!("{host} ({addr})")
    };
    ConnectFailure::new(kind, format!("could not connect to {target}: {err}"))
}

/// A connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// When `status` was produced on PRISM's side from a transport failure (or tonic's own deadline
/// timer), that failure's kind and description; `None` for a status the server sent.
///
/// tonic builds statuses from transport errors with the error as `source`, while statuses parsed
/// from the server's `grpc-status` have none — that is the distinction used here. Within the
/// chain, the connector's own [`ConnectFailure`] is authoritative; otherwise an io error means the
/// connection broke, and an h2 error without one means the peer violated HTTP/2 (for example a
/// plaintext call to a TLS port).
pub(crate) fn transport_failure(status: &Status) -> Option<(ErrorKind, String)> {
    let source = StdError::source(status)?;
    let chain = causes(source);
    if let Some(failure) = chain
        .iter()
        .find_map(|c| c.downcast_ref::<ConnectFailure>())
    {
        return Some((failure.kind, failure.message.clone()));
    }
    // tonic's client enforces the `grpc-timeout` PRISM sends, racing PRISM's own timer for the
    // same deadline; whichever fires, it is the call's deadline.
    if chain.iter().any(|c| c.is::<tonic::TimeoutExpired>()) {
        return Some((ErrorKind::Timeout, describe(status.message(), &chain)));
    }
    let io_kind = chain
        .iter()
        .find_map(|c| c.downcast_ref::<io::Error>().map(io::Error::kind));
    let h2_protocol = chain
        .iter()
        .filter_map(|c| c.downcast_ref::<h2::Error>())
        .any(|e| !e.is_io());
    let kind = match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => ErrorKind::ConnectionRefused,
        Some(io::ErrorKind::TimedOut) => ErrorKind::Timeout,
        Some(_) => ErrorKind::Io,
        None if h2_protocol => ErrorKind::Protocol,
        None => ErrorKind::Io,
    };
    Some((kind, describe(status.message(), &chain)))
}

/// The error and its causes, outermost first. `io::Error::source` skips the error it wraps, so
/// that inner error is added explicitly (it is where rustls and h2 errors hide).
fn causes<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out: Vec<&(dyn StdError + 'static)> = Vec::new();
    let mut next = Some(err);
    while let Some(cause) = next {
        if out.len() >= 16 {
            break;
        }
        out.push(cause);
        next = match cause.downcast_ref::<io::Error>().and_then(|e| e.get_ref()) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => cause.source(),
        };
    }
    out
}

fn describe(first: &str, chain: &[&(dyn StdError + 'static)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for text in std::iter::once(first.to_owned()).chain(chain.iter().map(|c| c.to_string())) {
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(enabled: bool) -> GrpcTls {
        GrpcTls {
            enabled,
            ..GrpcTls::default()
        }
    }

    #[test]
    fn addresses_parse_into_targets() {
        let t = Target::parse("localhost:50051", &tls(false)).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls.is_some()),
            ("localhost", 50051, false)
        );
        let t = Target::parse(" https://api.example.test ", &tls(false)).unwrap();
        assert_eq!((t.port, t.tls.unwrap().verify), (443, true));
        let t = Target::parse("HTTP://10.0.0.1/", &tls(false)).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("10.0.0.1", 80, None));
        let t = Target::parse("[::1]:9000", &tls(true)).unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.authority(), "[::1]:9000");
        assert!(t.tls.is_some());
    }

    #[test]
    fn bad_addresses_are_invalid_address_errors() {
        for bad in [
            "",
            "localhost",
            "ftp://x:1",
            "http://x:1/prefix",
            "user@x:1",
            "x:99999",
            "x y:1",
            ":80",
        ] {
            let err = Target::parse(bad, &tls(false)).unwrap_err();
            assert_eq!(err.code(), "invalid_address", "{bad:?}: {err}");
        }
        let err = Target::parse("http://x:1", &tls(true)).unwrap_err();
        assert!(err.to_string().contains("TLS is enabled"), "{err}");
    }

    #[test]
    fn a_bad_ca_is_an_invalid_tls_config() {
        for pem in [
            "not a pem",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        ] {
            let settings = TlsSettings {
                ca_pem: Some(pem.into()),
                verify: true,
            };
            let err = client_config(&settings).unwrap_err();
            assert_eq!(err.code(), "invalid_tls_config", "{err}");
        }
    }

    #[test]
    fn server_statuses_are_not_transport_failures() {
        assert!(transport_failure(&Status::unavailable("down for maintenance")).is_none());
        let mut status = Status::unavailable("x");
        status.set_source(Arc::new(io::Error::from(io::ErrorKind::ConnectionReset)));
        assert_eq!(transport_failure(&status).unwrap().0, ErrorKind::Io);
        let mut status = Status::unknown("x");
        status.set_source(Arc::new(ConnectFailure::new(
            ErrorKind::Blocked,
            "blocked".into(),
        )));
        assert_eq!(
            transport_failure(&status).unwrap(),
            (ErrorKind::Blocked, "blocked".into())
        );
        let mut status = Status::cancelled("Timeout expired");
        status.set_source(Arc::new(tonic::TimeoutExpired(())));
        assert_eq!(transport_failure(&status).unwrap().0, ErrorKind::Timeout);
    }
}

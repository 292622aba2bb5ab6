//! The outbound-target policy: which hosts and addresses PRISM may send requests to.
//!
//! PRISM runs requests on behalf of its users, so without a policy it is a server-side request
//! forgery tool pointed at its own network (cloud metadata at 169.254.169.254, the database, admin
//! ports on loopback). Every executor checks a target twice: the host name before resolution
//! ([`EgressPolicy::check_host`]) and **every resolved address** before connecting
//! ([`EgressPolicy::check_addr`]) — checking only the name would let DNS rebinding through.
//!
//! Rules, in order:
//! 1. a host matching `deny_hosts` is blocked;
//! 2. an address inside `allow_cidrs` is allowed;
//! 3. an address inside `deny_cidrs` is blocked;
//! 4. with `deny_internal`, loopback, link-local (incl. cloud metadata), private, shared (CGNAT),
//!    unique-local, unspecified, multicast and broadcast addresses are blocked unless the host
//!    matches `allow_hosts`;
//! 5. everything else is allowed.
//!
//! `prism up` (one person on their own machine) uses [`EgressPolicy::allow_all`]; split and shared
//! deployments default to [`EgressPolicy::restricted`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An address range such as `10.0.0.0/8` or `fd00::/8`; a bare address is a single-host range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {0:?}: expected an address with an optional /prefix, e.g. 10.0.0.0/8")]
pub struct InvalidCidr(pub String);

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_u32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_u128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn mask_u32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask_u128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = InvalidCidr;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidCidr(s.to_owned());
        let text = s.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network = canonical(addr.parse::<IpAddr>().map_err(|_| invalid())?);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(invalid)?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A host name pattern: `api.example.com` (exactly that host) or `*.example.com` (any host below
/// it, not `example.com` itself). Case-insensitive; a trailing dot is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(String);

impl HostPattern {
    pub fn new(pattern: &str) -> Self {
        HostPattern(normalize_host(pattern))
    }

    pub fn matches(&self, host: &str) -> bool {
        let host = normalize_host(host);
        match self.0.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => host == self.0,
        }
    }
}

impl Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(HostPattern::new(&String::deserialize(d)?))
    }
}

fn normalize_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('.');
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.to_ascii_lowercase()
}

/// Why a target was refused. The message names the rule so users can ask for the right exception.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbound request to {target} blocked: {reason}")]
pub struct Blocked {
    pub target: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EgressPolicy {
    /// Block internal addresses (rule 4).
    #[serde(default)]
    pub deny_internal: bool,
    #[serde(default)]
    pub allow_cidrs: Vec<Cidr>,
    #[serde(default)]
    pub deny_cidrs: Vec<Cidr>,
    #[serde(default)]
    pub allow_hosts: Vec<HostPattern>,
    #[serde(default)]
    pub deny_hosts: Vec<HostPattern>,
}

impl EgressPolicy {
    /// Everything may be reached (still subject to explicit deny lists added later).
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// Internal addresses are blocked; add exceptions with `allow_cidrs` / `allow_hosts`.
    pub fn restricted() -> Self {
        Self {
            deny_internal: true,
            ..Self::default()
        }
    }

    /// True when no rule can block anything, so executors may skip the checks entirely.
    pub fn is_open(&self) -> bool {
        !self.deny_internal && self.deny_cidrs.is_empty() && self.deny_hosts.is_empty()
    }

    /// The check before resolution. A host that is an IP literal is also checked as an address.
    pub fn check_host(&self, host: &str) -> Result<(), Blocked> {
        let normalized = normalize_host(host);
        if let Some(pattern) = self.deny_hosts.iter().find(|p| p.matches(&normalized)) {
            return Err(Blocked {
                target: normalized.clone(),
                reason: format!("host matches the deny list entry {:?}", pattern.0),
            });
        }
        if let Ok(ip) = normalized.parse::<IpAddr>() {
            self.check_addr(&normalized, ip)?;
        }
        Ok(())
    }

    /// The check of one resolved address of `host`, before connecting to it.
    pub fn check_addr(&self, host: &str, ip: IpAddr) -> Result<(), Blocked> {
        let ip = canonical(ip);
        if self.allow_cidrs.iter().any(|c| c.contains(ip)) {
            return Ok(());
        }
        let blocked = |reason: String| Blocked {
            target: if host.parse::<IpAddr>().is_ok() {
                ip.to_string()
            } else {
                format!("{host} ({ip})")
            },
            reason,
        };
        if let Some(cidr) = self.deny_cidrs.iter().find(|c| c.contains(ip)) {
            return Err(blocked(format!("address is in the denied range {cidr}")));
        }
        if self.deny_internal
            && !self.allow_hosts.iter().any(|p| p.matches(host))
            && let Some(class) = internal_class(ip)
        {
            return Err(blocked(format!(
                "{class} addresses are not allowed by this server's outbound policy"
            )));
        }
        Ok(())
    }
}

/// The kind of internal address `ip` is, if it is one.
pub fn internal_class(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast/broadcast/reserved")
    } else {
        None
    }
}

fn internal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local (private)")
    } else if ip.is_multicast() {
        Some("multicast/broadcast/reserved")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        let single: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(single.to_string(), "192.0.2.7/32");
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn host_patterns() {
        let exact = HostPattern::new("API.example.com.");
        assert!(exact.matches("api.example.com"));
        assert!(!exact.matches("x.api.example.com"));
        let wildcard = HostPattern::new("*.internal");
        assert!(wildcard.matches("orders.internal"));
        assert!(wildcard.matches("a.b.internal"));
        assert!(!wildcard.matches("internal"));
        assert!(!wildcard.matches("notinternal"));
    }

    #[test]
    fn restricted_blocks_internal_ranges() {
        let policy = EgressPolicy::restricted();
        for addr in [
            "127.0.0.1",
            "169.254.169.254",
            "10.0.0.5",
            "172.16.3.4",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            let err = policy.check_addr("h", ip(addr)).unwrap_err();
            assert!(err.to_string().contains("blocked"), "{addr}: {err}");
        }
        assert!(policy.check_addr("h", ip("93.184.216.34")).is_ok());
        assert!(policy.check_addr("h", ip("2606:4700::1")).is_ok());
        assert!(policy.check_host("127.0.0.1").is_err());
        assert!(policy.check_host("[::1]").is_err());
        assert!(policy.check_host("example.org").is_ok());
    }

    #[test]
    fn exceptions_and_deny_lists() {
        let mut policy = EgressPolicy::restricted();
        policy.allow_cidrs.push("10.20.0.0/16".parse().unwrap());
        policy.allow_hosts.push(HostPattern::new("*.corp.test"));
        policy.deny_cidrs.push("203.0.113.0/24".parse().unwrap());
        policy.deny_hosts.push(HostPattern::new("evil.test"));
        assert!(policy.check_addr("x", ip("10.20.1.1")).is_ok());
        assert!(policy.check_addr("x", ip("10.21.1.1")).is_err());
        assert!(policy.check_addr("db.corp.test", ip("10.99.0.1")).is_ok());
        let err = policy.check_addr("x", ip("203.0.113.5")).unwrap_err();
        assert!(err.reason.contains("203.0.113.0/24"), "{err}");
        assert!(policy.check_host("EVIL.test").is_err());

        let open = EgressPolicy::allow_all();
        assert!(open.is_open());
        assert!(open.check_addr("x", ip("127.0.0.1")).is_ok());
        assert!(!policy.is_open());
    }

    #[test]
    fn policy_round_trips_as_config() {
        let json = r#"{"deny_internal":true,"allow_cidrs":["10.0.0.0/8"],"allow_hosts":["*.svc"]}"#;
        let policy: EgressPolicy = serde_json::from_str(json).unwrap();
        assert!(policy.deny_internal);
        assert!(policy.check_addr("a.svc", ip("192.168.0.1")).is_ok());
        let back = serde_json::to_string(&policy).unwrap();
        assert!(back.contains("10.0.0.0/8"), "{back}");
    }
}

//! Applies the outbound-target policy ([`prism_domain::egress`]) to reqwest.
//!
//! Three places can send a request somewhere the policy forbids, and each is covered:
//! - the URL's host: checked before sending ([`EgressPolicy::check_host`]; IP literals are checked
//!   as addresses, because reqwest connects to them without resolving);
//! - the resolved addresses of a host name: [`PolicyResolver`] drops blocked ones and fails when
//!   none is left, so DNS answers that point inside the network (rebinding) are refused (its
//!   lookup is the timed one of [`super::timing`]);
//! - redirects: every hop's host is checked again by the redirect policy (its name is resolved
//!   through the same resolver).

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;

use prism_domain::egress::{Blocked, EgressPolicy};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;

/// A resolver that only returns addresses the policy allows.
#[derive(Debug)]
pub(super) struct PolicyResolver {
    pub(super) policy: Arc<EgressPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = super::timing::lookup(&host).await?;
            let mut first_blocked = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check_addr(&host, addr.ip()) {
                    Ok(()) => true,
                    Err(blocked) => {
                        first_blocked.get_or_insert(blocked);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), first_blocked) {
                (true, Some(blocked)) => Err(Box::new(blocked) as Box<dyn StdError + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// A redirect policy that follows at most `max` redirects and checks every hop's host.
pub(super) fn redirect_policy(policy: Arc<EgressPolicy>, max: usize) -> Policy {
    Policy::custom(move |attempt| {
        if attempt.previous().len() > max {
            return attempt.error(format!("too many redirects (more than {max})"));
        }
        let host = attempt.url().host_str().unwrap_or_default().to_owned();
        match policy.check_host(&host) {
            Ok(()) => attempt.follow(),
            Err(blocked) => attempt.error(blocked),
        }
    })
}

/// The policy refusal somewhere in an error's source chain, if that is why it failed.
pub(super) fn blocked_cause<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Blocked> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(blocked) = e.downcast_ref::<Blocked>() {
            return Some(blocked);
        }
        current = e.source();
    }
    None
}

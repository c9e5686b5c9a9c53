//! Where to connect to reach a domain's XMPP service: RFC 6120 §3.2 with
//! XEP-0368's direct-TLS records.
//!
//! Both `_xmpps-…` (TLS from the first byte) and `_xmpp-…` (STARTTLS) are
//! asked for at once. Their records are merged and ordered as RFC 2782
//! says (priority, then weighted random), with no preference between the
//! two kinds: XEP-0368 §3 asks to treat them alike, so the domain's
//! priorities and weights decide.
//!
//! "." as the only record of a name means "decidedly not available"
//! (RFC 2782). The fallback to the domain itself on the default port
//! (RFC 6120 §3.2.2) is STARTTLS, so only a "." for the `_xmpp-…` name
//! stops it: when both names say ".", or `_xmpp-…` says "." and
//! `_xmpps-…` has nothing, there is nowhere to connect.

use std::net::IpAddr;

use futures_lite::future;
use ring::rand::SystemRandom;

use super::{Resolver, Srv};

/// The RFC 6120 §3.2.2 fallback ports.
pub const S2S_FALLBACK_PORT: u16 = 5269;
pub const C2S_FALLBACK_PORT: u16 = 5222;

/// One place to try, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// A host name (lower case, no trailing dot) or an IP address.
    pub host: String,
    pub port: u16,
    /// TLS from the first byte (XEP-0368); otherwise STARTTLS.
    pub direct_tls: bool,
}

/// The SRV names of one kind of XMPP service.
#[derive(Debug, Clone, Copy)]
struct Service {
    direct_tls: &'static str,
    starttls: &'static str,
    fallback_port: u16,
}

const S2S: Service = Service {
    direct_tls: "_xmpps-server._tcp",
    starttls: "_xmpp-server._tcp",
    fallback_port: S2S_FALLBACK_PORT,
};

const C2S: Service = Service {
    direct_tls: "_xmpps-client._tcp",
    starttls: "_xmpp-client._tcp",
    fallback_port: C2S_FALLBACK_PORT,
};

/// Where to connect to reach the server of `domain`, best first; empty if
/// the domain says it does not federate.
pub async fn s2s_targets(resolver: &Resolver, domain: &str) -> Vec<Target> {
    targets(resolver, domain, S2S).await
}

/// Where a client would connect for `domain` (what `perch check` reports).
pub async fn c2s_targets(resolver: &Resolver, domain: &str) -> Vec<Target> {
    targets(resolver, domain, C2S).await
}

async fn targets(resolver: &Resolver, domain: &str, service: Service) -> Vec<Target> {
    let domain = domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase();
    // An address as a domain has no SRV records to look for.
    if domain.parse::<IpAddr>().is_ok() {
        return plan(
            &domain,
            service.fallback_port,
            Vec::new(),
            Vec::new(),
            &mut |_| 0,
        );
    }
    let (direct, starttls) = future::zip(
        records(resolver, &format!("{}.{domain}", service.direct_tls)),
        records(resolver, &format!("{}.{domain}", service.starttls)),
    )
    .await;
    plan(
        &domain,
        service.fallback_port,
        direct,
        starttls,
        &mut system_rng(),
    )
}

/// The SRV records of `name`; a failed look-up counts as none (the
/// fallback then still has a chance).
async fn records(resolver: &Resolver, name: &str) -> Vec<Srv> {
    resolver.srv(name).await.unwrap_or_else(|e| {
        log::debug!("{e}; taking it as no records");
        Vec::new()
    })
}

/// Merges the two kinds of records into targets, best first (pure: the
/// random choices come from `rng`, see [`order_srv`]).
pub fn plan(
    domain: &str,
    fallback_port: u16,
    direct_tls: Vec<Srv>,
    starttls: Vec<Srv>,
    rng: &mut impl FnMut(u64) -> u64,
) -> Vec<Target> {
    let refused = |records: &[Srv]| records.len() == 1 && records[0].is_unavailable();
    let starttls_refused = refused(&starttls);
    let candidates: Vec<Candidate> = direct_tls
        .into_iter()
        .map(|srv| (srv, true))
        .chain(starttls.into_iter().map(|srv| (srv, false)))
        // "." among other records means nothing (RFC 2782 gives it a
        // meaning only alone); port 0 cannot be connected to.
        .filter(|(srv, _)| !srv.is_unavailable() && srv.port != 0)
        .map(|(srv, direct_tls)| Candidate { srv, direct_tls })
        .collect();
    if candidates.is_empty() {
        if starttls_refused {
            return Vec::new();
        }
        return vec![Target {
            host: domain.to_owned(),
            port: fallback_port,
            direct_tls: false,
        }];
    }
    let mut targets: Vec<Target> = Vec::with_capacity(candidates.len());
    for candidate in order_srv(candidates, rng) {
        let target = Target {
            host: candidate.srv.target,
            port: candidate.srv.port,
            direct_tls: candidate.direct_tls,
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    targets
}

/// An SRV record and which kind of name it came from.
#[derive(Debug, Clone)]
struct Candidate {
    srv: Srv,
    direct_tls: bool,
}

impl AsRef<Srv> for Candidate {
    fn as_ref(&self) -> &Srv {
        &self.srv
    }
}

/// Orders SRV records as RFC 2782 says: ascending priority; within a
/// priority, repeatedly pick one at random with a chance proportional to
/// its weight. Records of weight 0 are placed first before each pick, so
/// they are chosen only when the random number is 0 (rarely, if there are
/// weighted ones; in the order received, if all weigh 0).
///
/// `rng(bound)` must return a number in `0..=bound`, uniformly at random
/// in production; tests pass a fixed sequence. Larger values are clamped.
pub fn order_srv<T: AsRef<Srv>>(records: Vec<T>, rng: &mut impl FnMut(u64) -> u64) -> Vec<T> {
    let mut records = records;
    // Stable: equal keys keep the order received.
    records.sort_by_key(|r| (r.as_ref().priority, r.as_ref().weight != 0));
    let mut ordered = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let priority = first.as_ref().priority;
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|r| r.as_ref().priority == priority) {
            group.push(next);
        }
        while !group.is_empty() {
            let total: u64 = group.iter().map(|r| u64::from(r.as_ref().weight)).sum();
            let pick = rng(total).min(total);
            let mut running = 0;
            let index = group
                .iter()
                .position(|r| {
                    running += u64::from(r.as_ref().weight);
                    running >= pick
                })
                .unwrap_or(0);
            ordered.push(group.remove(index));
        }
    }
    ordered
}

/// A uniform `0..=bound` from the system's generator (0 if it fails, which
/// only makes the order less random).
fn system_rng() -> impl FnMut(u64) -> u64 {
    let random = SystemRandom::new();
    move |bound| {
        if bound == 0 {
            return 0;
        }
        let Ok(bytes) = ring::rand::generate::<[u8; 8]>(&random) else {
            return 0;
        };
        // Bounds are sums of a few 16-bit weights: against 64 random bits
        // the modulo bias is negligible.
        u64::from_be_bytes(bytes.expose()) % bound.saturating_add(1)
    }
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;

//! Which connections may open: a limit for the whole server and one per
//! client address (IPv6 by /64, as the login throttle counts), and what
//! happens when an address reaches its limit.
//!
//! An address at its limit would otherwise let silent connections (opened
//! and never used) hold every slot for the whole authentication timeout,
//! shutting out everyone else behind the same address: a family's devices
//! share their home router's. So, at the limit:
//!
//! - a new connection takes the slot of the connection from that address
//!   that has not authenticated and has been silent longest, if it has been
//!   silent for [`SILENT_FOR`]; otherwise the new connection is refused;
//! - every connection of that address still authenticating has to make
//!   progress: one silent for [`PRESSURE_TIMEOUT`] is closed, instead of
//!   after the full authentication timeout.
//!
//! A client that is talking (TLS, SASL) is never displaced, and an
//! authenticated one never is: the trade-off is that one attacker behind a
//! shared address can still use up that address's slots with connections
//! that keep talking, which the per-stanza deadline and the login throttle
//! make short-lived and slow.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::login_throttle::AddressGroup;
use crate::outbox::Outbox;
use crate::stream::{StreamCondition, StreamError};

/// A connection that has not authenticated and sent nothing for this long
/// may give its slot to a new one when its address is at its limit.
pub const SILENT_FOR: Duration = Duration::from_secs(5);
/// While its address is at its limit, a connection still authenticating
/// is closed after this long without input.
pub const PRESSURE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection was refused, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    ServerFull,
    AddressFull,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::ServerFull => "server connection limit reached",
            Refusal::AddressFull => "too many connections from this address",
        }
    }
}

/// One admitted connection, shared between its task and the admission
/// table.
pub struct Ticket {
    pub group: AddressGroup,
    pub outbox: Rc<Outbox>,
    last_input: Cell<Instant>,
    /// Still counted against its address (a displaced connection stops
    /// counting at once, before its task has ended).
    counted: Cell<bool>,
    /// Since when the address has been at its limit, while it is: the
    /// connection, if still authenticating, must then not stay silent for
    /// [`PRESSURE_TIMEOUT`].
    pressure_since: Cell<Option<Instant>>,
    /// A login step is under way (the login throttle may hold it): the
    /// connection is waiting for the server, not silent.
    busy: Cell<bool>,
    /// Counted against its address's limit (false: a trusted reverse
    /// proxy's connection, counted in the total only).
    per_address: bool,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("group", &self.group)
            .field("counted", &self.counted.get())
            .finish_non_exhaustive()
    }
}

impl Ticket {
    /// The connection received bytes.
    pub fn input_at(&self, now: Instant) {
        self.last_input.set(now);
    }

    /// When the connection must have authenticated (or said something),
    /// if its address is under pressure.
    pub fn pressure_deadline(&self) -> Option<Instant> {
        if self.busy.get() {
            return None;
        }
        let since = self.pressure_since.get()?;
        Some(self.last_input.get().max(since) + PRESSURE_TIMEOUT)
    }

    /// A login step starts (`true`) or ends (`false`); its end counts as
    /// input.
    pub fn set_busy(&self, busy: bool, now: Instant) {
        self.busy.set(busy);
        self.last_input.set(now);
    }
}

#[derive(Default)]
struct AddressState {
    count: u32,
    /// The per-address limit when the last connection was admitted.
    limit: u32,
    /// Connections of this address that have not authenticated yet.
    authenticating: Vec<Rc<Ticket>>,
}

#[derive(Default)]
pub struct Admission {
    addresses: HashMap<AddressGroup, AddressState>,
    total: usize,
}

impl Admission {
    /// Admits a connection from `ip` within `max_total` connections in all
    /// and `max_per_address` from its address.
    pub fn admit(
        &mut self,
        now: Instant,
        ip: IpAddr,
        max_total: usize,
        max_per_address: u32,
    ) -> Result<Rc<Ticket>, Refusal> {
        if self.total >= max_total {
            return Err(Refusal::ServerFull);
        }
        let group = AddressGroup::of(ip);
        let state = self.addresses.entry(group).or_default();
        state.limit = max_per_address;
        if state.count >= max_per_address {
            if !displace_silent(state, now) {
                put_under_pressure(state, now);
                return Err(Refusal::AddressFull);
            }
            self.total = self.total.saturating_sub(1);
        }
        let ticket = Rc::new(Ticket {
            group,
            outbox: Outbox::new(),
            last_input: Cell::new(now),
            counted: Cell::new(true),
            pressure_since: Cell::new(None),
            busy: Cell::new(false),
            per_address: true,
        });
        state.count += 1;
        state.authenticating.push(ticket.clone());
        if state.count >= max_per_address {
            put_under_pressure(state, now);
        }
        self.total += 1;
        Ok(ticket)
    }

    /// Admits a connection of a trusted reverse proxy: it counts in the
    /// total only. Its address's own clients (the proxy's machine, often
    /// loopback) keep their slots, and the clients behind the proxy are
    /// admitted by their own addresses when their requests name them.
    pub fn admit_proxied(
        &mut self,
        now: Instant,
        ip: IpAddr,
        max_total: usize,
    ) -> Result<Rc<Ticket>, Refusal> {
        if self.total >= max_total {
            return Err(Refusal::ServerFull);
        }
        self.total += 1;
        Ok(Rc::new(Ticket {
            group: AddressGroup::of(ip),
            outbox: Outbox::new(),
            last_input: Cell::new(now),
            counted: Cell::new(true),
            pressure_since: Cell::new(None),
            busy: Cell::new(false),
            per_address: false,
        }))
    }

    /// The connection authenticated: it is no longer displaced or hurried.
    pub fn authenticated(&mut self, ticket: &Ticket) {
        if let Some(state) = self.addresses.get_mut(&ticket.group) {
            state
                .authenticating
                .retain(|t| !std::ptr::eq(Rc::as_ptr(t), ticket));
        }
        ticket.pressure_since.set(None);
    }

    /// The connection's task ended.
    pub fn ended(&mut self, ticket: &Ticket) {
        if !ticket.per_address {
            if ticket.counted.replace(false) {
                self.total = self.total.saturating_sub(1);
            }
            return;
        }
        let Some(state) = self.addresses.get_mut(&ticket.group) else {
            return;
        };
        state
            .authenticating
            .retain(|t| !std::ptr::eq(Rc::as_ptr(t), ticket));
        if ticket.counted.replace(false) {
            state.count = state.count.saturating_sub(1);
            self.total = self.total.saturating_sub(1);
        }
        if state.count < state.limit {
            // Below its limit again: nobody has to hurry any more.
            for t in &state.authenticating {
                t.pressure_since.set(None);
            }
        }
        if state.count == 0 && state.authenticating.is_empty() {
            self.addresses.remove(&ticket.group);
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn shrink_idle(&mut self) {
        crate::memory::ShrinkIdle::shrink_idle(&mut self.addresses);
    }
}

/// Closes the longest-silent authenticating connection of an address if
/// it has been silent for [`SILENT_FOR`]; its slot is free at once.
fn displace_silent(state: &mut AddressState, now: Instant) -> bool {
    let oldest = state
        .authenticating
        .iter()
        .enumerate()
        .filter(|(_, t)| t.counted.get() && !t.busy.get())
        .min_by_key(|(_, t)| t.last_input.get());
    let Some((index, ticket)) = oldest else {
        return false;
    };
    if now.saturating_duration_since(ticket.last_input.get()) < SILENT_FOR {
        return false;
    }
    let ticket = state.authenticating.swap_remove(index);
    ticket.counted.set(false);
    state.count = state.count.saturating_sub(1);
    ticket.outbox.close_with(StreamError::with_text(
        StreamCondition::ConnectionTimeout,
        "silent while other connections from this address waited",
    ));
    true
}

/// Marks each authenticating connection of an address at its limit: from
/// now on it is closed after [`PRESSURE_TIMEOUT`] without input; it is
/// woken to notice.
fn put_under_pressure(state: &AddressState, now: Instant) {
    for ticket in &state.authenticating {
        if ticket.pressure_since.get().is_none() {
            ticket.pressure_since.set(Some(now));
            ticket.outbox.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));

    #[test]
    fn a_silent_connection_gives_its_slot_to_a_new_one() {
        let mut a = Admission::default();
        let t0 = Instant::now();
        let silent: Vec<_> = (0..4).map(|_| a.admit(t0, HOME, 100, 4).unwrap()).collect();
        // At the limit; all four are under pressure now.
        assert!(
            silent
                .iter()
                .all(|t| t.pressure_deadline() == Some(t0 + PRESSURE_TIMEOUT))
        );
        // Too soon to call them silent: refused.
        assert_eq!(
            a.admit(t0 + Duration::from_secs(1), HOME, 100, 4)
                .unwrap_err(),
            Refusal::AddressFull
        );
        // One of them talks; later the newcomer displaces a silent one.
        silent[2].input_at(t0 + Duration::from_secs(4));
        let later = t0 + SILENT_FOR + Duration::from_secs(1);
        let fresh = a
            .admit(later, HOME, 100, 4)
            .expect("displaced a silent one");
        let closed: Vec<_> = silent.iter().map(|t| t.outbox.is_closing()).collect();
        assert_eq!(closed.iter().filter(|c| **c).count(), 1);
        assert!(!closed[2], "the connection that talked stays");
        assert_eq!(a.total(), 4);
        // Its task ending later does not free a second slot.
        let displaced = silent.iter().find(|t| t.outbox.is_closing()).unwrap();
        a.ended(displaced);
        assert_eq!(a.total(), 4);
        a.ended(&fresh);
        assert_eq!(a.total(), 3);
    }

    #[test]
    fn pressure_follows_input_and_lifts_below_the_limit() {
        let mut a = Admission::default();
        let t0 = Instant::now();
        let talking = a.admit(t0, HOME, 100, 2).unwrap();
        let other = a.admit(t0, HOME, 100, 2).unwrap();
        assert_eq!(talking.pressure_deadline(), Some(t0 + PRESSURE_TIMEOUT));
        // Input moves the deadline on; a login step under way has none.
        talking.input_at(t0 + Duration::from_secs(8));
        assert_eq!(
            talking.pressure_deadline(),
            Some(t0 + Duration::from_secs(8) + PRESSURE_TIMEOUT)
        );
        talking.set_busy(true, t0 + Duration::from_secs(9));
        assert_eq!(talking.pressure_deadline(), None);
        // A busy connection is not displaced, however long it waits.
        let later = t0 + Duration::from_secs(60);
        let newcomer = a
            .admit(later, HOME, 100, 2)
            .expect("the silent one gave way");
        assert!(!talking.outbox.is_closing());
        assert!(other.outbox.is_closing());
        talking.set_busy(false, later);
        // Below the limit again: no deadline.
        a.ended(&newcomer);
        assert_eq!(talking.pressure_deadline(), None);
    }

    #[test]
    fn authenticated_connections_are_never_displaced() {
        let mut a = Admission::default();
        let t0 = Instant::now();
        let family: Vec<_> = (0..3).map(|_| a.admit(t0, HOME, 100, 3).unwrap()).collect();
        for t in &family {
            a.authenticated(t);
        }
        let much_later = t0 + Duration::from_secs(3600);
        assert_eq!(
            a.admit(much_later, HOME, 100, 3).unwrap_err(),
            Refusal::AddressFull
        );
        assert!(family.iter().all(|t| !t.outbox.is_closing()));
        assert!(family.iter().all(|t| t.pressure_deadline().is_none()));
    }

    #[test]
    fn the_server_limit_counts_every_address() {
        let mut a = Admission::default();
        let now = Instant::now();
        let _one = a.admit(now, HOME, 2, 10).unwrap();
        let _two = a
            .admit(now, IpAddr::V4(Ipv4Addr::LOCALHOST), 2, 10)
            .unwrap();
        assert_eq!(
            a.admit(now, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 2, 10)
                .unwrap_err(),
            Refusal::ServerFull
        );
    }

    #[test]
    fn ipv6_addresses_of_one_network_share_a_limit() {
        let mut a = Admission::default();
        let now = Instant::now();
        let first: IpAddr = "2001:db8::1".parse().unwrap();
        let second: IpAddr = "2001:db8::2".parse().unwrap();
        let _t = a.admit(now, first, 10, 1).unwrap();
        assert_eq!(
            a.admit(now, second, 10, 1).unwrap_err(),
            Refusal::AddressFull
        );
    }

    #[test]
    fn a_trusted_proxy_counts_in_the_total_only() {
        let mut a = Admission::default();
        let now = Instant::now();
        let proxied: Vec<_> = (0..50)
            .map(|_| a.admit_proxied(now, HOME, 100).unwrap())
            .collect();
        // The proxy's own address keeps all its slots.
        let _own: Vec<_> = (0..3)
            .map(|_| a.admit(now, HOME, 100, 3).unwrap())
            .collect();
        assert_eq!(a.total(), 53);
        assert_eq!(
            a.admit_proxied(now, HOME, 53).unwrap_err(),
            Refusal::ServerFull
        );
        for t in &proxied {
            a.ended(t);
            a.ended(t);
        }
        assert_eq!(a.total(), 3);
        assert_eq!(
            a.admit(now, HOME, 100, 3).unwrap_err(),
            Refusal::AddressFull
        );
    }
}

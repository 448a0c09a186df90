//! Stream tickets: a browser cannot put a credential on a WebSocket upgrade, so a caller
//! trades its credential for a short-lived, single-use `rtt_…` ticket (API.md §7.4) and
//! puts that in the stream's URL. A ticket is bound to the caller's organization (or, for
//! a platform admin, to every organization) and
//! principal and carries the stream's filters. Only a hash of each ticket is held, as
//! for API keys, so a lookup reveals nothing through its timing.

use crate::auth::Principal;
use crate::events::filter::StreamFilter;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

pub const TICKET_PREFIX: &str = "rtt_";

/// Whose events a stream carries: one organization's, or — for a platform admin's event
/// monitor (API.md §8 adminEventsTicket) — every organization's. A variant of its own, so
/// no organization id can ever name the platform's stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    Organization(String),
    Platform,
}

impl Audience {
    /// The organization, for one organization's stream.
    pub fn organization(&self) -> Option<&str> {
        match self {
            Audience::Organization(o) => Some(o),
            Audience::Platform => None,
        }
    }
}

impl From<&str> for Audience {
    fn from(organization: &str) -> Self {
        Audience::Organization(organization.to_owned())
    }
}

impl std::fmt::Display for Audience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Audience::Organization(o) => f.write_str(o),
            Audience::Platform => f.write_str("*"),
        }
    }
}

/// What a ticket opens.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub audience: Audience,
    pub principal: Principal,
    /// When the credential that minted it stops being valid (a JWT's `exp` plus the
    /// configured leeway, epoch ms); `None` for API keys, which end by revocation.
    pub credential_expires_at: Option<u64>,
    pub filter: StreamFilter,
    /// Resume after this event id.
    pub after: Option<String>,
    /// Epoch ms.
    pub expires_at: u64,
}

/// Unused tickets one audience may hold at once: minting is cheap, so it is bounded.
pub const MAX_TICKETS_PER_ORG: usize = 1_000;

/// Why a ticket was not minted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyTickets;

/// Unused tickets, by hash.
#[derive(Debug)]
pub struct TicketStore {
    ttl_ms: u64,
    tickets: Mutex<HashMap<[u8; 32], Ticket>>,
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl TicketStore {
    pub fn new(ttl_ms: u64) -> Self {
        TicketStore {
            ttl_ms,
            tickets: Mutex::new(HashMap::new()),
        }
    }

    /// Mints a ticket valid from `now` (epoch ms) for the configured time; returns the
    /// secret and the ticket as stored.
    pub fn mint(
        &self,
        audience: &Audience,
        principal: Principal,
        credential_expires_at: Option<u64>,
        filter: StreamFilter,
        after: Option<String>,
        now: u64,
    ) -> Result<(String, Ticket), TooManyTickets> {
        let mut tickets = self.tickets.lock().expect("lock");
        tickets.retain(|_, t| t.expires_at > now);
        let held = tickets.values().filter(|t| &t.audience == audience).count();
        if held >= MAX_TICKETS_PER_ORG {
            return Err(TooManyTickets);
        }
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let secret = format!("{TICKET_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let ticket = Ticket {
            audience: audience.clone(),
            principal,
            credential_expires_at,
            filter,
            after,
            expires_at: now + self.ttl_ms,
        };
        tickets.insert(hash(&secret), ticket.clone());
        Ok((secret, ticket))
    }

    /// Whether `secret` is a ticket that could be used at `now`, without using it.
    pub fn is_valid(&self, secret: &str, now: u64) -> bool {
        self.tickets
            .lock()
            .expect("lock")
            .get(&hash(secret))
            .is_some_and(|t| t.expires_at > now)
    }

    /// Uses a ticket: it is gone afterwards, whether or not it had expired.
    pub fn redeem(&self, secret: &str, now: u64) -> Option<Ticket> {
        self.tickets
            .lock()
            .expect("lock")
            .remove(&hash(secret))
            .filter(|t| t.expires_at > now)
    }

    /// Puts back a ticket that was redeemed but opened nothing (the stream cap was full),
    /// so the client may retry with it until it expires.
    pub fn put_back(&self, secret: &str, ticket: Ticket) {
        self.tickets
            .lock()
            .expect("lock")
            .insert(hash(secret), ticket);
    }

    /// Drops expired tickets.
    pub fn prune(&self, now: u64) {
        self.tickets
            .lock()
            .expect("lock")
            .retain(|_, t| t.expires_at > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::filter::EventFilter;

    fn mint(store: &TicketStore, org: &str, now: u64) -> Result<String, TooManyTickets> {
        let filter = StreamFilter {
            events: EventFilter::all(),
            session: None,
        };
        store
            .mint(
                &Audience::from(org),
                Principal::ApiKey("key_1".into()),
                None,
                filter,
                None,
                now,
            )
            .map(|(secret, _)| secret)
    }

    #[test]
    fn a_ticket_opens_once_and_only_before_it_expires() {
        let store = TicketStore::new(30_000);
        let t = mint(&store, "org_a", 1_000).unwrap();
        assert!(t.starts_with(TICKET_PREFIX) && t.len() > 40);
        assert!(store.is_valid(&t, 30_999));
        assert!(!store.is_valid(&t, 31_000));
        let ticket = store.redeem(&t, 2_000).unwrap();
        assert_eq!(ticket.audience, Audience::from("org_a"));
        assert_eq!(ticket.expires_at, 31_000);
        assert!(store.redeem(&t, 2_000).is_none(), "single use");
        store.put_back(&t, ticket);
        assert!(store.redeem(&t, 2_000).is_some());

        let late = mint(&store, "org_a", 1_000).unwrap();
        assert!(store.redeem(&late, 31_000).is_none(), "expired");
        assert!(store.redeem("rtt_unknown", 0).is_none());
    }

    #[test]
    fn unused_tickets_are_bounded_per_organization() {
        let store = TicketStore::new(1_000);
        for _ in 0..MAX_TICKETS_PER_ORG {
            mint(&store, "org_a", 0).unwrap();
        }
        assert_eq!(mint(&store, "org_a", 0), Err(TooManyTickets));
        // Another organization is not affected, and expired tickets make room.
        mint(&store, "org_b", 0).unwrap();
        mint(&store, "org_a", 1_000).unwrap();
    }
}

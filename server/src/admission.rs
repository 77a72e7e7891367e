//! Admission: which connections the server takes on, and whose tokens it still checks.
//!
//! Three caps count open connections (all of them, the anonymous ones, and those of one
//! address), so anonymous clients can never take the room authenticated clients need and one
//! address cannot take everybody's. A connection holds a [`Ticket`] from its accepted upgrade
//! until its task ends; the counts are the tickets alive, so a connection still closing (its
//! close frame on the way) counts too.
//!
//! Rejected tokens are remembered per address in a table of at most [`FAILURE_ADDRESSES`]
//! entries: an address that reaches `max_auth_failures_per_address` within
//! `auth_failure_window` has no token checked until that window ends, which bounds token
//! guessing to that many tries per window and address.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::Limits;

/// What the per-address limits count by: an IPv4 address, or the /64 prefix of an IPv6 one
/// (one host usually holds a whole /64, so counting single IPv6 addresses would count nothing).
/// An IPv4-mapped IPv6 address counts as its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AddrKey(IpAddr);

impl AddrKey {
    pub fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(_) => AddrKey(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    AddrKey(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

impl fmt::Display for AddrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Which cap refused a connection, with its configured value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Full {
    /// `max_connections_per_address`: this address holds that many already.
    Address { key: AddrKey, limit: usize },
    /// `max_connections`.
    Total { limit: usize },
    /// `max_anonymous_connections`: that many connections without a principal are open.
    Anonymous { limit: usize },
}

#[derive(Debug, Default)]
struct Counts {
    open: usize,
    anonymous: usize,
    /// Open connections per address; an address with none has no entry, so the map never
    /// holds more entries than there are connections.
    by_address: HashMap<AddrKey, usize>,
}

/// Most addresses whose rejected tokens are remembered (about 40 bytes each). When the table is
/// full, a new address takes the place of the one with the fewest failures (the oldest among
/// equals), so addresses that are locked out stay locked while the table churns.
pub(crate) const FAILURE_ADDRESSES: usize = 4096;

/// One address's rejected tokens in its current window.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: usize,
    /// When the window began: at the first failure after the previous window ended.
    since: Instant,
}

/// An address whose tokens are not checked for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockedOut {
    pub key: AddrKey,
    /// `max_auth_failures_per_address`.
    pub limit: usize,
    /// `auth_failure_window`.
    pub window: Duration,
    /// Until the window ends.
    pub wait: Duration,
}

impl LockedOut {
    /// The wait in whole seconds, rounded up (for `Retry-After`).
    pub fn wait_secs(&self) -> u64 {
        self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0)
    }
}

impl fmt::Display for LockedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sent too many rejected tokens (max_auth_failures_per_address = {} within \
             auth_failure_window = {} ms); no token from it is checked for another {} s",
            self.key,
            self.limit,
            self.window.as_millis(),
            self.wait_secs()
        )
    }
}

/// The connection caps and what they count; the rejected tokens per address.
#[derive(Debug)]
pub(crate) struct Admission {
    total: usize,
    anonymous: usize,
    per_address: usize,
    counts: Mutex<Counts>,
    failure_limit: usize,
    failure_window: Duration,
    failures: Mutex<HashMap<AddrKey, Strikes>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its table consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Admission {
    pub fn new(limits: &Limits) -> Admission {
        Admission {
            total: limits.max_connections,
            anonymous: limits.anonymous_connection_cap(),
            per_address: limits.per_address_connection_cap(),
            counts: Mutex::new(Counts::default()),
            failure_limit: limits.max_auth_failures_per_address,
            failure_window: limits.auth_failure_window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        lock(&self.counts)
    }

    /// Whether tokens from `key` go unchecked for now, and for how long.
    pub fn locked_out(&self, key: AddrKey) -> Option<LockedOut> {
        self.locked_out_at(key, Instant::now())
    }

    fn locked_out_at(&self, key: AddrKey, now: Instant) -> Option<LockedOut> {
        let failures = lock(&self.failures);
        let strikes = failures.get(&key)?;
        let ends = strikes.since + self.failure_window;
        (strikes.count >= self.failure_limit && now < ends).then(|| LockedOut {
            key,
            limit: self.failure_limit,
            window: self.failure_window,
            wait: ends - now,
        })
    }

    /// Remembers a rejected token from `key`.
    pub fn auth_failed(&self, key: AddrKey) {
        self.auth_failed_at(key, Instant::now());
    }

    fn auth_failed_at(&self, key: AddrKey, now: Instant) {
        let mut failures = lock(&self.failures);
        let window = self.failure_window;
        if let Some(strikes) = failures.get_mut(&key) {
            if now < strikes.since + window {
                strikes.count += 1;
            } else {
                *strikes = Strikes {
                    count: 1,
                    since: now,
                };
            }
            return;
        }
        if failures.len() >= FAILURE_ADDRESSES {
            failures.retain(|_, strikes| now < strikes.since + window);
        }
        if failures.len() >= FAILURE_ADDRESSES {
            let weakest = failures
                .iter()
                .min_by_key(|(_, strikes)| (strikes.count, strikes.since))
                .map(|(key, _)| *key);
            if let Some(weakest) = weakest {
                failures.remove(&weakest);
            }
        }
        failures.insert(
            key,
            Strikes {
                count: 1,
                since: now,
            },
        );
    }

    /// Takes a connection from `key` on, anonymous (no principal yet) or not, unless a cap is
    /// reached: the total first (the server is full for everybody), then the address's, then
    /// the anonymous one.
    pub fn admit(self: &Arc<Self>, key: AddrKey, anonymous: bool) -> Result<Ticket, Full> {
        let mut counts = self.lock();
        if counts.open >= self.total {
            return Err(Full::Total { limit: self.total });
        }
        let from_address = counts.by_address.get(&key).copied().unwrap_or(0);
        if from_address >= self.per_address {
            return Err(Full::Address {
                key,
                limit: self.per_address,
            });
        }
        if anonymous && counts.anonymous >= self.anonymous {
            return Err(Full::Anonymous {
                limit: self.anonymous,
            });
        }
        counts.open += 1;
        counts.anonymous += usize::from(anonymous);
        *counts.by_address.entry(key).or_insert(0) += 1;
        Ok(Ticket {
            admission: Arc::clone(self),
            key,
            anonymous,
        })
    }

    /// Open connections, and how many of them are anonymous.
    pub fn open(&self) -> (usize, usize) {
        let counts = self.lock();
        (counts.open, counts.anonymous)
    }
}

/// One admitted connection's place in the counts, given back when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    key: AddrKey,
    anonymous: bool,
}

impl Ticket {
    /// The address the connection counts under.
    pub fn key(&self) -> AddrKey {
        self.key
    }

    /// Moves the connection between the anonymous and the authenticated pool: it authenticated,
    /// or its principal was taken away by a rejected token. Moving back into the anonymous pool
    /// is never refused (the connection is open already), so that pool may stand above its cap
    /// for a while; new anonymous connections are refused until it is below again.
    pub fn set_anonymous(&mut self, anonymous: bool) {
        if self.anonymous == anonymous {
            return;
        }
        let mut counts = self.admission.lock();
        if anonymous {
            counts.anonymous += 1;
        } else {
            counts.anonymous = counts.anonymous.saturating_sub(1);
        }
        self.anonymous = anonymous;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.open = counts.open.saturating_sub(1);
        if self.anonymous {
            counts.anonymous = counts.anonymous.saturating_sub(1);
        }
        if let Some(n) = counts.by_address.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.by_address.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded(limit: usize, window: Duration) -> Admission {
        Admission::new(&Limits {
            max_auth_failures_per_address: limit,
            auth_failure_window: window,
            ..Limits::default()
        })
    }

    #[test]
    fn an_address_is_locked_out_at_the_limit_until_its_window_ends() {
        let admission = guarded(3, Duration::from_secs(10));
        let a = key("10.0.0.1");
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        admission.auth_failed_at(a, at(0));
        admission.auth_failed_at(a, at(4));
        assert_eq!(admission.locked_out_at(a, at(5)), None);
        admission.auth_failed_at(a, at(5));
        let locked = admission.locked_out_at(a, at(5)).unwrap();
        assert_eq!(locked.wait, Duration::from_secs(5), "the window began at 0");
        assert_eq!(
            locked.to_string(),
            "10.0.0.1 sent too many rejected tokens (max_auth_failures_per_address = 3 within \
             auth_failure_window = 10000 ms); no token from it is checked for another 5 s"
        );
        assert_eq!(admission.locked_out_at(key("10.0.0.2"), at(5)), None);
        assert_eq!(admission.locked_out_at(a, at(10)), None);
        // A failure after the window starts a new one.
        admission.auth_failed_at(a, at(11));
        assert_eq!(admission.locked_out_at(a, at(11)), None);
        assert_eq!(lock(&admission.failures)[&a].count, 1);
    }

    #[test]
    fn the_failure_table_stays_bounded_and_keeps_the_locked_out() {
        let admission = guarded(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let locked = key("192.168.0.1");
        admission.auth_failed_at(locked, t0);
        admission.auth_failed_at(locked, t0);
        for n in 0..(FAILURE_ADDRESSES as u32 + 500) {
            let ip = IpAddr::V4((0x0a00_0000 + n).into());
            admission.auth_failed_at(AddrKey::of(ip), t0 + Duration::from_millis(1));
        }
        assert_eq!(lock(&admission.failures).len(), FAILURE_ADDRESSES);
        assert!(admission.locked_out_at(locked, t0).is_some());
        // Expired entries go first.
        let later = t0 + Duration::from_secs(61);
        admission.auth_failed_at(key("172.16.0.1"), later);
        assert_eq!(lock(&admission.failures).len(), 1);
    }

    fn admission(total: usize, anonymous: usize, per_address: usize) -> Arc<Admission> {
        Arc::new(Admission::new(&Limits {
            max_connections: total,
            max_anonymous_connections: Some(anonymous),
            max_connections_per_address: Some(per_address),
            ..Limits::default()
        }))
    }

    fn key(ip: &str) -> AddrKey {
        AddrKey::of(ip.parse().unwrap())
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix_and_mapped_ipv4_as_ipv4() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_eq!(key("2001:db8:1:2:aaaa::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(key("10.0.0.1").to_string(), "10.0.0.1");
    }

    #[test]
    fn each_cap_refuses_in_turn_and_a_dropped_ticket_gives_its_place_back() {
        let admission = admission(4, 2, 3);
        let a = key("10.0.0.1");
        let b = key("10.0.0.2");
        let first = admission.admit(a, true).unwrap();
        let _second = admission.admit(a, true).unwrap();
        assert_eq!(
            admission.admit(b, true).unwrap_err(),
            Full::Anonymous { limit: 2 }
        );
        let _third = admission.admit(a, false).unwrap();
        assert_eq!(
            admission.admit(a, false).unwrap_err(),
            Full::Address { key: a, limit: 3 }
        );
        let _fourth = admission.admit(b, false).unwrap();
        assert_eq!(
            admission.admit(b, false).unwrap_err(),
            Full::Total { limit: 4 }
        );
        assert_eq!(admission.open(), (4, 2));
        drop(first);
        assert_eq!(admission.open(), (3, 1));
        let _fifth = admission.admit(b, true).unwrap();
        assert_eq!(admission.lock().by_address.len(), 2);
    }

    #[test]
    fn authenticating_moves_a_connection_out_of_the_anonymous_pool_and_back() {
        let admission = admission(10, 1, 10);
        let a = key("10.0.0.1");
        let mut ticket = admission.admit(a, true).unwrap();
        assert!(admission.admit(a, true).is_err());
        ticket.set_anonymous(false);
        ticket.set_anonymous(false);
        assert_eq!(admission.open(), (1, 0));
        let other = admission.admit(a, true).unwrap();
        // A rejected token takes the principal away: back in the pool, even above its cap.
        ticket.set_anonymous(true);
        assert_eq!(admission.open(), (2, 2));
        drop((ticket, other));
        assert_eq!(admission.open(), (0, 0));
        assert!(admission.lock().by_address.is_empty());
    }
}

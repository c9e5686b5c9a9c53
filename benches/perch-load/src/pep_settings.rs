//! The options of `pep` beyond the shared ones (`--port`, `--server-pid`,
//! `--user-prefix`, `--seconds`, …), each with a default and a bound.

use crate::args::number_in;

/// How the rosters come to be (`--roster`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterSetup {
    /// Over XMPP: every account asks each contact it is not yet mutually
    /// subscribed with, and approves every request it gets.
    Subscribe,
    /// They were provisioned beforehand (an import): only checked.
    Ready,
}

impl RosterSetup {
    pub fn parse(s: &str) -> Option<RosterSetup> {
        match s {
            "subscribe" => Some(RosterSetup::Subscribe),
            "ready" => Some(RosterSetup::Ready),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RosterSetup::Subscribe => "subscribe",
            RosterSetup::Ready => "ready",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PepSettings {
    /// Accounts `<prefix><first>` … `<prefix><first + accounts - 1>`.
    pub accounts: usize,
    /// Contacts of each account, subscription both: the accounts at ring
    /// distance 1 to contacts / 2 on either side. Even, below `accounts`.
    pub contacts: usize,
    /// Publications per second of each measured phase, all accounts
    /// together; one phase per rate.
    pub rates: Vec<u64>,
    /// Publications of each measured phase; 0: rate × `--seconds`.
    pub publishes: u64,
    /// Publications an account may have unanswered.
    pub window: usize,
    /// Nodes each account publishes one item to for the memory reading;
    /// 0 skips it.
    pub nodes: usize,
    pub roster: RosterSetup,
    /// Publications per second of the set-up phases (nodes, warm-up),
    /// all accounts together.
    pub setup_rate: u64,
    /// Warm-up rounds (each account publishes one item) allowed before
    /// the servers are taken to know every client's capabilities.
    pub warmup_rounds: usize,
    /// The chat yardstick: pairs and seconds of each chat phase (0: none).
    pub chat_pairs: usize,
    pub chat_seconds: f64,
}

impl Default for PepSettings {
    fn default() -> Self {
        PepSettings {
            accounts: 1000,
            contacts: 100,
            rates: vec![100],
            publishes: 0,
            window: 4,
            nodes: 10,
            roster: RosterSetup::Subscribe,
            setup_rate: 500,
            warmup_rounds: 3,
            chat_pairs: 50,
            chat_seconds: 10.0,
        }
    }
}

pub const PEP_HELP: &str = "\
pep options (defaults in brackets; the shared options above also apply;
--seconds is each measured phase's length when --publishes is not given):
  --accounts N           accounts <prefix><first-user>…, all must exist [1000]
  --contacts N           contacts of each account (subscription both), even
                         and below --accounts: the accounts at ring distance
                         1 to N/2 on either side [100]
  --roster subscribe|ready   subscribe: each account asks the contacts it is
                         not yet mutually subscribed with and approves
                         every request (not timed); ready: the rosters were
                         provisioned (e.g. imported), only checked [subscribe]
  --rate R[,R]           publications per second, all accounts together,
                         one measured phase per rate [100]
  --publishes N          publications of each measured phase; 0: rate ×
                         --seconds [0]
  --publish-window N     publications an account may have unanswered [4]
  --nodes N              nodes each account publishes one item to before
                         the memory reading (nobody is notified); 0: none [10]
  --setup-rate R         publications per second, all accounts together,
                         of the phases that create the nodes (the memory
                         reading's and the warm-up); refused ones are made
                         again, up to 5 times [500]
  --warmup-rounds N      rounds of one publication per account allowed for
                         the servers to learn every client's capabilities [3]
  --chat-pairs N         pairs of the chat yardstick [50]
  --chat-seconds S       each chat phase (closed loop, then at each phase's
                         notification rate); 0: no chat [10]";

/// The option names `pep` adds.
pub const NAMES: [&str; 11] = [
    "accounts",
    "contacts",
    "roster",
    "rate",
    "publishes",
    "publish-window",
    "nodes",
    "setup-rate",
    "warmup-rounds",
    "chat-pairs",
    "chat-seconds",
];

/// Most publications one phase may have: the tool keeps a counter per
/// publication.
pub const MAX_PUBLISHES: u64 = 10_000_000;

impl PepSettings {
    /// Sets one option; `Err` with the reason when its value is bad.
    pub fn set(&mut self, name: &str, v: &str) -> Result<(), String> {
        match name {
            "accounts" => self.accounts = number_in(name, v, 2..=100_000)?,
            "contacts" => self.contacts = number_in(name, v, 0..=10_000)?,
            "roster" => {
                self.roster = RosterSetup::parse(v)
                    .ok_or_else(|| format!("--roster: '{v}' (subscribe, ready)"))?
            }
            "rate" => {
                let rates = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| number_in(name, s, 1..=1_000_000u64))
                    .collect::<Result<Vec<_>, _>>()?;
                if rates.is_empty() {
                    return Err("--rate: publications per second, e.g. 100,500".into());
                }
                self.rates = rates;
            }
            "publishes" => self.publishes = number_in(name, v, 0..=MAX_PUBLISHES)?,
            "publish-window" => self.window = number_in(name, v, 1..=10_000)?,
            "nodes" => self.nodes = number_in(name, v, 0..=1000)?,
            "setup-rate" => self.setup_rate = number_in(name, v, 1..=1_000_000)?,
            "warmup-rounds" => self.warmup_rounds = number_in(name, v, 1..=100)?,
            "chat-pairs" => self.chat_pairs = number_in(name, v, 1..=50_000)?,
            "chat-seconds" => self.chat_seconds = number_in(name, v, 0.0..=86_400.0)?,
            _ => return Err(format!("unknown option --{name}")),
        }
        Ok(())
    }

    /// Checks what depends on more than one option.
    pub fn check(&self) -> Result<(), String> {
        if !self.contacts.is_multiple_of(2) || self.contacts >= self.accounts {
            return Err(format!(
                "--contacts {}: an even number below --accounts {} (the ring's neighbours on both sides)",
                self.contacts, self.accounts
            ));
        }
        if self.chat_seconds > 0.0 && 2 * self.chat_pairs > self.accounts {
            return Err(format!(
                "--chat-pairs {} needs {} accounts; --accounts is {}",
                self.chat_pairs,
                2 * self.chat_pairs,
                self.accounts
            ));
        }
        Ok(())
    }

    /// Publications of a measured phase at `rate` lasting `seconds`.
    pub fn publishes_at(&self, rate: u64, seconds: f64) -> u64 {
        if self.publishes > 0 {
            return self.publishes;
        }
        ((rate as f64 * seconds).round() as u64).clamp(1, MAX_PUBLISHES)
    }

    /// The contacts of account `k` (0-based): ring distance 1 to
    /// contacts / 2 on either side, ascending distance.
    pub fn contacts_of(&self, k: usize) -> Vec<usize> {
        let n = self.accounts;
        let half = self.contacts / 2;
        let mut out = Vec::with_capacity(self.contacts);
        for d in 1..=half {
            out.push((k + d) % n);
            out.push((k + n - d) % n);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse() {
        let mut s = PepSettings::default();
        s.set("rate", "10,200").expect("valid");
        s.set("roster", "ready").expect("valid");
        s.set("accounts", "5").expect("valid");
        s.set("contacts", "4").expect("valid");
        s.set("chat-pairs", "2").expect("valid");
        assert_eq!(s.rates, vec![10, 200]);
        assert_eq!(s.roster, RosterSetup::Ready);
        assert!(s.check().is_ok());
        for (name, v) in [
            ("rate", "0"),
            ("rate", ""),
            ("roster", "import"),
            ("accounts", "1"),
            ("publishes", "x"),
            ("chat-seconds", "-1"),
            ("frobnicate", "1"),
        ] {
            assert!(s.set(name, v).is_err(), "--{name} {v}");
        }
        s.set("contacts", "5").expect("parses");
        assert!(s.check().is_err(), "odd");
        s.set("contacts", "6").expect("parses");
        assert!(s.check().is_err(), "as many as the accounts");
        s.set("contacts", "4").expect("parses");
        s.set("chat-pairs", "3").expect("parses");
        assert!(s.check().is_err(), "6 chat accounts of 5");
        assert_eq!(s.publishes_at(100, 2.5), 250);
        s.set("publishes", "7").expect("valid");
        assert_eq!(s.publishes_at(100, 2.5), 7);
    }

    #[test]
    fn the_ring_is_symmetric_and_regular() {
        let s = PepSettings {
            accounts: 7,
            contacts: 4,
            ..PepSettings::default()
        };
        for k in 0..7 {
            let c = s.contacts_of(k);
            assert_eq!(c.len(), 4);
            assert!(!c.contains(&k));
            for j in c {
                assert!(s.contacts_of(j).contains(&k), "{k} and {j}");
            }
        }
        assert_eq!(s.contacts_of(0), vec![1, 6, 2, 5]);
        // Every other account when contacts = accounts - 1 (odd accounts).
        let all = PepSettings {
            accounts: 5,
            contacts: 4,
            ..PepSettings::default()
        };
        let mut c = all.contacts_of(2);
        c.sort_unstable();
        assert_eq!(c, vec![0, 1, 3, 4]);
    }
}

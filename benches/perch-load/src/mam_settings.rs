//! The options of `mam` beyond the shared ones (`--port`, `--server-pid`,
//! `--user-prefix`, …), each with a default and a bound.

use crate::args::number_in;
use std::path::PathBuf;

/// How the server's fsyncs are counted (`--fsyncs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncTool {
    None,
    Perf,
    Strace,
}

impl FsyncTool {
    pub fn parse(s: &str) -> Option<FsyncTool> {
        match s {
            "none" => Some(FsyncTool::None),
            "perf" => Some(FsyncTool::Perf),
            "strace" => Some(FsyncTool::Strace),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FsyncTool::None => "none",
            FsyncTool::Perf => "perf",
            FsyncTool::Strace => "strace",
        }
    }
}

/// Which archives a run fills and queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archives {
    pub user: bool,
    pub room: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MamSettings {
    /// Accounts `<prefix><first+1>` … `<prefix><first+contacts>` send to
    /// the archive's owner `<prefix><first>`.
    pub contacts: usize,
    /// Archive sizes (messages in each archive) at which queries are
    /// measured, ascending.
    pub sizes: Vec<u64>,
    pub archives: Archives,
    /// The room's local part (at `--muc-domain`).
    pub room: String,
    /// Occupants sending groupchat to fill the room (the first contacts).
    pub room_senders: usize,
    /// Messages each sender may have in flight (sent, not yet seen by the
    /// owner or reflected) while filling.
    pub fill_window: usize,
    /// Queries of each kind at each size (split over the rounds).
    pub reps: usize,
    /// Rounds: every kind runs reps / rounds times per round, kinds
    /// interleaved, so a noisy minute hits all of them.
    pub rounds: usize,
    /// Cap on the time spent on one kind at one size (all rounds).
    pub query_seconds: f64,
    /// Results per page.
    pub page: usize,
    /// A file or directory whose size is read after each fill (the
    /// server's database).
    pub data_path: Option<PathBuf>,
    /// How fsyncs of the server are counted during the writing phases.
    pub fsyncs: FsyncTool,
    /// Messages of each writing phase (`--write-senders` senders, then one
    /// sender); 0 skips them.
    pub write_msgs: u64,
    pub write_senders: usize,
    pub seed: u64,
    /// Query the archives as they are (no fills; the first size is only
    /// the records' label): for profiling a server between runs.
    pub no_fill: bool,
    /// The kinds of query timed (`measure::Kind` names); empty: all.
    pub kinds: Vec<String>,
}

impl Default for MamSettings {
    fn default() -> Self {
        MamSettings {
            contacts: 100,
            sizes: vec![10_000, 100_000, 1_000_000],
            archives: Archives {
                user: true,
                room: true,
            },
            room: "mambench".into(),
            room_senders: 5,
            fill_window: 500,
            reps: 300,
            rounds: 3,
            query_seconds: 60.0,
            page: 50,
            data_path: None,
            fsyncs: FsyncTool::None,
            write_msgs: 10_000,
            write_senders: 50,
            seed: 18,
            no_fill: false,
            kinds: Vec::new(),
        }
    }
}

pub const MAM_HELP: &str = "\
mam options (defaults in brackets; the shared options above also apply):
  --contacts N           contacts <prefix><first+1>… sending to the owner
                         <prefix><first-user>; all must exist [100]
  --sizes N,N            archive sizes to measure queries at, ascending
                         [10000,100000,1000000]
  --archives user,room   which archives to fill and query [user,room]
  --room NAME            the persistent room's local part [mambench]
  --room-senders N       occupants sending groupchat, from the first
                         contacts [5]
  --fill-window N        messages in flight per sender while filling [500]
  --reps N               queries of each kind per size [300]
  --rounds N             rounds the reps are split into, kinds interleaved [3]
  --query-seconds S      cap on one kind's queries at one size [60]
  --page N               results per page [50]
  --data-path PATH       file or directory whose bytes are read after each
                         fill (Perch: DATA_DIR/perch.redb) []
  --fsyncs none|perf|strace   count the server's fsync and fdatasync calls
                         during the writing phases (perf stat on the
                         syscall tracepoints, or strace -f -c) [none]
  --write-msgs N         messages of each writing phase; 0: none [10000]
  --write-senders N      senders of the first writing phase [50]
  --seed N               seed of the query parameters [18]
  --kinds K[,K]          queries to time: newest, with, after_id, since,
                         count [all]
  --no-fill yes          time queries on the archives as they are (the
                         first size only labels the records), e.g. while
                         profiling the server []";

/// The option names `mam` adds.
pub const NAMES: [&str; 17] = [
    "contacts",
    "sizes",
    "archives",
    "room",
    "room-senders",
    "fill-window",
    "reps",
    "rounds",
    "query-seconds",
    "page",
    "data-path",
    "fsyncs",
    "write-msgs",
    "write-senders",
    "seed",
    "kinds",
    "no-fill",
];

impl MamSettings {
    /// Sets one option; `Err` with the reason when its value is bad.
    pub fn set(&mut self, name: &str, v: &str) -> Result<(), String> {
        match name {
            "contacts" => self.contacts = number_in(name, v, 1..=100_000)?,
            "sizes" => {
                let sizes = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| number_in(name, s, 1..=100_000_000u64))
                    .collect::<Result<Vec<_>, _>>()?;
                if sizes.is_empty() || sizes.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!("--sizes: '{v}' is not a list of ascending sizes"));
                }
                self.sizes = sizes;
            }
            "archives" => {
                let mut a = Archives {
                    user: false,
                    room: false,
                };
                for part in v.split(',') {
                    match part {
                        "user" => a.user = true,
                        "room" => a.room = true,
                        _ => return Err(format!("--archives: '{part}' (user, room)")),
                    }
                }
                self.archives = a;
            }
            "room" => {
                if v.is_empty() || v.contains(['@', '/', ' ', '\'', '"', '<', '&']) {
                    return Err("--room: a room's local part".into());
                }
                self.room = v.to_string();
            }
            "room-senders" => self.room_senders = number_in(name, v, 1..=1000)?,
            "fill-window" => self.fill_window = number_in(name, v, 1..=100_000)?,
            "reps" => self.reps = number_in(name, v, 1..=1_000_000)?,
            "rounds" => self.rounds = number_in(name, v, 1..=100)?,
            "query-seconds" => self.query_seconds = number_in(name, v, 0.0..=86_400.0)?,
            "page" => self.page = number_in(name, v, 1..=1000)?,
            "data-path" => self.data_path = Some(PathBuf::from(v)),
            "fsyncs" => {
                self.fsyncs = FsyncTool::parse(v)
                    .ok_or_else(|| format!("--fsyncs: '{v}' (none, perf, strace)"))?
            }
            "write-msgs" => self.write_msgs = number_in(name, v, 0..=10_000_000)?,
            "write-senders" => self.write_senders = number_in(name, v, 1..=100_000)?,
            "seed" => self.seed = number_in(name, v, 0..=u64::MAX)?,
            "kinds" => {
                let known = ["newest", "with", "after_id", "since", "count"];
                let kinds: Vec<String> = v.split(',').map(str::to_string).collect();
                if let Some(k) = kinds.iter().find(|k| !known.contains(&k.as_str())) {
                    return Err(format!("--kinds: '{k}' ({})", known.join(", ")));
                }
                self.kinds = kinds;
            }
            "no-fill" => {
                self.no_fill = match v {
                    "yes" | "true" => true,
                    "no" | "false" => false,
                    _ => return Err(format!("--no-fill: '{v}' (yes, no)")),
                }
            }
            _ => return Err(format!("unknown option --{name}")),
        }
        Ok(())
    }

    /// Checks what depends on more than one option.
    pub fn check(&self) -> Result<(), String> {
        if self.archives.room && self.room_senders > self.contacts {
            return Err(format!(
                "--room-senders {} is more than --contacts {}",
                self.room_senders, self.contacts
            ));
        }
        if self.write_msgs > 0 && self.write_senders > self.contacts {
            return Err(format!(
                "--write-senders {} is more than --contacts {}",
                self.write_senders, self.contacts
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse() {
        let mut s = MamSettings::default();
        s.set("sizes", "10,100").expect("valid");
        s.set("archives", "room").expect("valid");
        s.set("fsyncs", "perf").expect("valid");
        assert_eq!(s.sizes, vec![10, 100]);
        assert_eq!(
            s.archives,
            Archives {
                user: false,
                room: true
            }
        );
        assert_eq!(s.fsyncs, FsyncTool::Perf);
        for (name, v) in [
            ("sizes", "100,10"),
            ("sizes", "0"),
            ("archives", "pubsub"),
            ("room", "a@b"),
            ("contacts", "0"),
            ("fsyncs", "dtrace"),
            ("rounds", "x"),
            ("frobnicate", "1"),
        ] {
            assert!(s.set(name, v).is_err(), "--{name} {v}");
        }
        assert!(NAMES.iter().all(|n| *n != "frobnicate"));
        let mut s = MamSettings::default();
        s.set("contacts", "3").expect("valid");
        assert!(s.check().is_err(), "5 room senders, 3 contacts");
        s.set("room-senders", "2").expect("valid");
        s.set("write-senders", "3").expect("valid");
        assert!(s.check().is_ok());
    }
}

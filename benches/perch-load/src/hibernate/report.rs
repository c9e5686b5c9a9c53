//! What `hibernate` measured: the server's memory with every client
//! connected and idle, with every session hibernated, and after all were
//! resumed; resumes per second; what failed.

use serde_json::{Value, json};

use crate::ctx::{latency_json, round};
use crate::histogram::Histogram;

/// One batch of resumptions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResumeBatch {
    pub sessions: usize,
    pub resumed: usize,
    pub wall_s: f64,
}

impl ResumeBatch {
    pub fn per_s(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.resumed as f64 / self.wall_s
        } else {
            0.0
        }
    }
}

#[derive(Clone, Default)]
pub struct HibernateReport {
    /// Each client was cut as soon as it had logged in (`--one-by-one`);
    /// the connected reading is from after the resumptions.
    pub one_by_one: bool,
    pub clients: usize,
    pub accounts: usize,
    pub tls: String,
    pub mechanism: String,
    pub logged_in: usize,
    pub login_s: f64,
    pub login_latency: Histogram,
    pub login_server_cpu_s: f64,
    /// Cores busy with anything but the server and the tool, on average.
    pub login_other_cores: f64,
    pub rss_before_kib: u64,
    pub fds_before: u64,
    pub rss_connected_kib: u64,
    pub fds_connected: u64,
    /// Idle connections that broke before the cut.
    pub lost_idle: usize,
    pub cut: usize,
    /// From the first cut to the server's descriptors back at the baseline.
    pub notice_s: Option<f64>,
    pub rss_hibernated_kib: u64,
    pub fds_hibernated: u64,
    pub batches: Vec<ResumeBatch>,
    pub resume_latency: Histogram,
    pub resume_server_cpu_s: f64,
    pub resume_other_cores: f64,
    pub rss_resumed_kib: u64,
    /// Resumed sessions that answered a ping and acknowledged everything.
    pub verified: usize,
    /// Stanzas that arrived after `<resumed/>` other than the ping's
    /// result (sent again, or new).
    pub stanzas_after_resume: u64,
    pub errors: Vec<String>,
    pub error_count: usize,
    pub descriptor_limit: String,
}

fn kib_per(total: u64, base: u64, n: usize) -> Option<f64> {
    (n > 0).then(|| (total as f64 - base as f64) / n as f64)
}

impl HibernateReport {
    pub fn resumed(&self) -> usize {
        self.batches.iter().map(|b| b.resumed).sum()
    }

    /// Everyone logged in, was cut, resumed and verified.
    pub fn ok(&self) -> bool {
        self.logged_in == self.clients
            && self.cut == self.clients
            && self.resumed() == self.clients
            && self.verified == self.clients
            && self.error_count == 0
    }

    /// (RSS connected − RSS before) ÷ connected clients.
    pub fn kib_per_connected(&self) -> Option<f64> {
        kib_per(self.rss_connected_kib, self.rss_before_kib, self.logged_in)
    }

    /// (RSS hibernated − RSS before) ÷ sessions cut.
    pub fn kib_per_hibernated(&self) -> Option<f64> {
        kib_per(self.rss_hibernated_kib, self.rss_before_kib, self.cut)
    }

    /// Per hibernated session minus per connected one (negative: a
    /// hibernated session costs less).
    pub fn kib_difference(&self) -> Option<f64> {
        Some(self.kib_per_hibernated()? - self.kib_per_connected()?)
    }

    /// The median of the batches' resumes per second.
    pub fn resumes_per_s_median(&self) -> Option<f64> {
        let mut rates: Vec<f64> = self
            .batches
            .iter()
            .filter(|b| b.resumed > 0)
            .map(ResumeBatch::per_s)
            .collect();
        if rates.is_empty() {
            return None;
        }
        rates.sort_by(f64::total_cmp);
        let n = rates.len();
        Some(if n % 2 == 1 {
            rates[n / 2]
        } else {
            (rates[n / 2 - 1] + rates[n / 2]) / 2.0
        })
    }

    /// All resumed ÷ the batches' time together.
    pub fn resumes_per_s_total(&self) -> Option<f64> {
        let wall: f64 = self.batches.iter().map(|b| b.wall_s).sum();
        (wall > 0.0).then(|| self.resumed() as f64 / wall)
    }

    pub fn logins_per_s(&self) -> Option<f64> {
        (self.login_s > 0.0).then(|| self.logged_in as f64 / self.login_s)
    }

    pub fn record(&self) -> Value {
        let r = |v: Option<f64>, d| v.map(|v| round(v, d));
        let per_ms = |cpu: f64, n: usize| (n > 0).then(|| round(1000.0 * cpu / n as f64, 3));
        json!({
            "scenario": "hibernate", "label": "perch", "ok": self.ok(),
            "one_by_one": self.one_by_one,
            "clients": self.clients, "accounts": self.accounts, "tls": self.tls,
            "mech": self.mechanism, "logged_in": self.logged_in,
            "logins_per_s": r(self.logins_per_s(), 1),
            "login_ms": latency_json(&self.login_latency),
            "server_cpu_ms_per_login": per_ms(self.login_server_cpu_s, self.logged_in),
            "login_other_busy_cores": round(self.login_other_cores, 2),
            "rss_before_kib": self.rss_before_kib, "fds_before": self.fds_before,
            "rss_connected_kib": self.rss_connected_kib, "fds_connected": self.fds_connected,
            "lost_idle": self.lost_idle, "cut": self.cut,
            "notice_s": r(self.notice_s, 3),
            "rss_hibernated_kib": self.rss_hibernated_kib,
            "fds_hibernated": self.fds_hibernated,
            "kib_per_connected": r(self.kib_per_connected(), 2),
            "kib_per_hibernated": r(self.kib_per_hibernated(), 2),
            "kib_hibernated_minus_connected": r(self.kib_difference(), 2),
            "resumed": self.resumed(),
            "resumes_per_s": r(self.resumes_per_s_median(), 1),
            "resumes_per_s_total": r(self.resumes_per_s_total(), 1),
            "resume_batches": self.batches.iter().map(|b| json!({
                "sessions": b.sessions, "resumed": b.resumed, "wall_s": round(b.wall_s, 3),
                "per_s": round(b.per_s(), 1),
            })).collect::<Vec<_>>(),
            "resume_ms": latency_json(&self.resume_latency),
            "server_cpu_ms_per_resume": per_ms(self.resume_server_cpu_s, self.resumed()),
            "resume_other_busy_cores": round(self.resume_other_cores, 2),
            "rss_resumed_kib": self.rss_resumed_kib,
            "verified": self.verified,
            "stanzas_after_resume": self.stanzas_after_resume,
            "errors": self.error_count, "error_samples": self.errors,
            "descriptor_limit": self.descriptor_limit,
        })
    }

    /// The human-readable summary.
    pub fn table(&self) -> String {
        let f = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
        let ms = |h: &Histogram, q: f64| {
            h.quantile(q)
                .map_or("-".to_string(), |ns| format!("{:.1}", ns as f64 / 1e6))
        };
        let mut out = format!(
            "hibernate: {} clients on {} accounts ({}, {}), {} logged in at {} logins/s \
             (p50 {} ms, p99 {} ms)\n",
            self.clients,
            self.accounts,
            self.tls,
            self.mechanism,
            self.logged_in,
            f(self.logins_per_s(), 0),
            ms(&self.login_latency, 0.5),
            ms(&self.login_latency, 0.99),
        );
        let line = |what: &str, rss: u64, fds: Option<u64>, per: Option<f64>| {
            format!(
                "  {what:<28} {rss:>9} KiB{}{}\n",
                fds.map_or(String::new(), |n| format!("   descriptors {n:>6}")),
                per.map_or(String::new(), |k| format!("   {k:>8.2} KiB per session")),
            )
        };
        out.push_str(&line(
            "server RSS before clients",
            self.rss_before_kib,
            Some(self.fds_before),
            None,
        ));
        let connected = line(
            if self.one_by_one {
                "all connected again, idle"
            } else {
                "all connected and idle"
            },
            self.rss_connected_kib,
            Some(self.fds_connected),
            self.kib_per_connected(),
        );
        if self.one_by_one {
            out.push_str(&line(
                "all hibernated, one by one",
                self.rss_hibernated_kib,
                Some(self.fds_hibernated),
                self.kib_per_hibernated(),
            ));
            out.push_str(&connected);
        } else {
            out.push_str(&connected);
            out.push_str(&line(
                "all hibernated",
                self.rss_hibernated_kib,
                Some(self.fds_hibernated),
                self.kib_per_hibernated(),
            ));
        }
        out.push_str(&format!(
            "  hibernated minus connected: {} KiB per session\n",
            f(self.kib_difference(), 2)
        ));
        if !self.one_by_one {
            out.push_str(&line("all resumed", self.rss_resumed_kib, None, None));
        }
        out.push_str(&if self.one_by_one {
            format!("  {} cut, each as soon as it had logged in\n", self.cut)
        } else {
            format!(
                "  {} cut; the server had closed them all {} s later\n",
                self.cut,
                f(self.notice_s, 3)
            )
        });
        let rates: Vec<String> = self
            .batches
            .iter()
            .map(|b| format!("{:.0}", b.per_s()))
            .collect();
        out.push_str(&format!(
            "  resumed {} of {} at {} resumes/s (median of batches: {}; all together {}), \
             p50 {} ms, p99 {} ms; {} verified ({:.1} cores busy with other work)\n",
            self.resumed(),
            self.cut,
            f(self.resumes_per_s_median(), 0),
            rates.join(", "),
            f(self.resumes_per_s_total(), 0),
            ms(&self.resume_latency, 0.5),
            ms(&self.resume_latency, 0.99),
            self.verified,
            self.resume_other_cores,
        ));
        if self.lost_idle > 0 {
            out.push_str(&format!(
                "  {} idle connections broke before the cut\n",
                self.lost_idle
            ));
        }
        if self.error_count > 0 {
            out.push_str(&format!("  {} errors:\n", self.error_count));
            for e in &self.errors {
                out.push_str(&format!("    {e}\n"));
            }
        }
        out.push_str(if self.ok() {
            "  every session resumed\n"
        } else {
            "  NOT every session was resumed\n"
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_per_session_and_rates() {
        let batch = |resumed, wall_s| ResumeBatch {
            sessions: 100,
            resumed,
            wall_s,
        };
        let mut r = HibernateReport {
            clients: 300,
            logged_in: 300,
            cut: 300,
            verified: 300,
            login_s: 3.0,
            rss_before_kib: 3000,
            rss_connected_kib: 6000,
            rss_hibernated_kib: 4500,
            batches: vec![batch(100, 0.5), batch(100, 0.25), batch(100, 1.0)],
            ..HibernateReport::default()
        };
        assert!(r.ok());
        assert_eq!(r.kib_per_connected(), Some(10.0));
        assert_eq!(r.kib_per_hibernated(), Some(5.0));
        assert_eq!(r.kib_difference(), Some(-5.0));
        assert_eq!(r.resumes_per_s_median(), Some(200.0));
        assert_eq!(r.resumes_per_s_total(), Some(300.0 / 1.75));
        assert_eq!(r.logins_per_s(), Some(100.0));
        let rec = r.record();
        assert_eq!(rec["kib_hibernated_minus_connected"], -5.0);
        assert_eq!(rec["resumes_per_s"], 200.0);
        assert_eq!(rec["resume_batches"].as_array().map(Vec::len), Some(3));
        assert!(r.table().contains("every session resumed"));
        r.batches[1].resumed = 99;
        assert!(!r.ok());
        assert!(r.table().contains("NOT every session"));
        let empty = HibernateReport::default();
        assert_eq!(empty.kib_per_connected(), None);
        assert_eq!(empty.resumes_per_s_median(), None);
        assert_eq!(empty.record()["kib_per_hibernated"], Value::Null);
    }
}

//! What `reconnect` measured, per pass: set-up time, round trips after
//! TLS, server CPU per login; and FAST against each classic login and
//! SASL2's SCRAM login, as ratios.

use serde_json::{Value, json};

use crate::ctx::{meter_json, round};
use crate::histogram::Histogram;
use crate::procfs::MeterReading;

/// One pass of logins (the `fast` passes after the first are merged).
#[derive(Clone)]
pub struct Pass {
    /// `classic`, `sasl2`, `fast_first`, `fast`.
    pub name: String,
    pub mode: String,
    pub mechanism: String,
    /// TCP connect to the bound session, nanoseconds.
    pub setup: Histogram,
    pub round_trips: Vec<u32>,
    pub ok: usize,
    pub errors: Vec<String>,
    pub meter: MeterReading,
}

impl Pass {
    /// Server CPU milliseconds per login.
    pub fn cpu_ms_per_login(&self) -> Option<f64> {
        (self.ok > 0).then(|| 1000.0 * self.meter.server_cpu_s / self.ok as f64)
    }

    pub fn setup_ms(&self, q: f64) -> Option<f64> {
        self.setup.quantile(q).map(|ns| ns as f64 / 1e6)
    }

    /// The median of the round trips the clients counted.
    pub fn round_trips_p50(&self) -> Option<u32> {
        let mut v = self.round_trips.clone();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }

    fn merge(&mut self, other: Pass) {
        self.setup.merge(&other.setup);
        self.round_trips.extend(other.round_trips);
        self.ok += other.ok;
        self.errors.extend(other.errors);
        let (a, b) = (&mut self.meter, other.meter);
        a.wall_s += b.wall_s;
        a.server_cpu_s += b.server_cpu_s;
        a.server_kernel_cpu_s += b.server_kernel_cpu_s;
        a.tool_cpu_s += b.tool_cpu_s;
        a.other_busy_cores = a.other_busy_cores.max(b.other_busy_cores);
    }

    /// The pass as a name for tables: `classic SCRAM-SHA-256`.
    pub fn label(&self) -> String {
        if self.mode == "classic" {
            format!("classic {}", self.mechanism)
        } else {
            self.name.clone()
        }
    }
}

#[derive(Clone, Default)]
pub struct ReconnectReport {
    pub clients: usize,
    pub concurrency: usize,
    pub tls: String,
    pub passes: Vec<Pass>,
    /// How many FAST passes were merged into `fast`.
    pub fast_passes: usize,
}

impl ReconnectReport {
    /// Adds a pass; later `fast` passes merge into the first.
    pub fn add(&mut self, pass: Pass) {
        if pass.name == "fast" {
            self.fast_passes += 1;
            if let Some(p) = self.passes.iter_mut().find(|p| p.name == "fast") {
                return p.merge(pass);
            }
        }
        self.passes.push(pass);
    }

    /// Every login of every pass succeeded.
    pub fn ok(&self) -> bool {
        !self.passes.is_empty() && self.passes.iter().all(|p| p.errors.is_empty())
    }

    fn find(&self, name: &str) -> Option<&Pass> {
        self.passes.iter().find(|p| p.name == name)
    }

    /// (baseline label, ratios) of each baseline against FAST.
    fn ratios(&self) -> Vec<(String, Value)> {
        let Some(fast) = self.find("fast").or_else(|| self.find("fast_first")) else {
            return Vec::new();
        };
        let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(round(a / b, 2)),
            _ => None,
        };
        self.passes
            .iter()
            .filter(|p| p.mode == "classic" || p.name == "sasl2")
            .map(|p| {
                (
                    p.label(),
                    json!({
                        "baseline": p.label(),
                        "server_cpu_per_login_ratio": div(p.cpu_ms_per_login(), fast.cpu_ms_per_login()),
                        "setup_p50_ratio": div(p.setup_ms(0.5), fast.setup_ms(0.5)),
                        "round_trips": p.round_trips_p50(),
                        "fast_round_trips": fast.round_trips_p50(),
                    }),
                )
            })
            .collect()
    }

    /// One JSON record per pass, then one with the ratios.
    pub fn records(&self, label: &str) -> Vec<Value> {
        let ms = |v: Option<f64>| v.map(|v| round(v, 3));
        let mut out: Vec<Value> = self
            .passes
            .iter()
            .map(|p| {
                let mut rec = json!({
                    "scenario": "reconnect", "label": label, "pass": p.name, "mode": p.mode,
                    "mech": p.mechanism, "tls": self.tls, "clients": self.clients,
                    "concurrency": self.concurrency, "ok": p.ok, "errors": p.errors.len(),
                    "error_samples": p.errors.iter().take(3).collect::<Vec<_>>(),
                    "passes": if p.name == "fast" { self.fast_passes } else { 1 },
                    "setup_ms": {
                        "n": p.setup.count(), "p50_ms": ms(p.setup_ms(0.5)),
                        "p95_ms": ms(p.setup_ms(0.95)), "p99_ms": ms(p.setup_ms(0.99)),
                        "max_ms": ms(Some(p.setup.max() as f64 / 1e6)),
                    },
                    "round_trips_after_tls": p.round_trips_p50(),
                    "round_trips_min": p.round_trips.iter().min(),
                    "round_trips_max": p.round_trips.iter().max(),
                    "server_cpu_ms_per_login": ms(p.cpu_ms_per_login()),
                    "logins_per_s": (p.meter.wall_s > 0.0).then(|| round(p.ok as f64 / p.meter.wall_s, 1)),
                });
                if let (Value::Object(r), Value::Object(m)) = (&mut rec, meter_json(&p.meter)) {
                    r.extend(m);
                }
                rec
            })
            .collect();
        let ratios: Vec<Value> = self.ratios().into_iter().map(|(_, v)| v).collect();
        out.push(json!({
            "scenario": "reconnect_ratio", "label": label, "tls": self.tls,
            "clients": self.clients, "against_fast": ratios,
        }));
        out
    }

    pub fn table(&self) -> String {
        let f = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
        let mut out = format!(
            "reconnect: {} clients, {} at a time, TLS {}\n\
             {:<24} {:>6} {:>10} {:>10} {:>12} {:>14}\n",
            self.clients,
            self.concurrency,
            self.tls,
            "pass",
            "ok",
            "p50 ms",
            "p95 ms",
            "round trips",
            "CPU ms/login"
        );
        for p in &self.passes {
            let label = if p.name == "fast" && self.fast_passes > 1 {
                format!("fast (x{})", self.fast_passes)
            } else {
                p.label()
            };
            out.push_str(&format!(
                "{label:<24} {:>6} {:>10} {:>10} {:>12} {:>14}\n",
                p.ok,
                f(p.setup_ms(0.5), 2),
                f(p.setup_ms(0.95), 2),
                p.round_trips_p50()
                    .map_or("-".to_string(), |r| r.to_string()),
                f(p.cpu_ms_per_login(), 3),
            ));
        }
        for (label, r) in self.ratios() {
            out.push_str(&format!(
                "{label} / FAST: server CPU per login x{}, set-up p50 x{}, round trips {} -> {}\n",
                f(r["server_cpu_per_login_ratio"].as_f64(), 2),
                f(r["setup_p50_ratio"].as_f64(), 2),
                r["round_trips"],
                r["fast_round_trips"],
            ));
        }
        for p in self.passes.iter().filter(|p| !p.errors.is_empty()) {
            out.push_str(&format!(
                "{}: {} failed, e.g. {}\n",
                p.label(),
                p.errors.len(),
                p.errors[0]
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(name: &str, mode: &str, ms: u64, trips: u32, cpu_s: f64) -> Pass {
        let mut setup = Histogram::new();
        for _ in 0..10 {
            setup.record(ms * 1_000_000);
        }
        Pass {
            name: name.into(),
            mode: mode.into(),
            mechanism: "M".into(),
            setup,
            round_trips: vec![trips; 10],
            ok: 10,
            errors: Vec::new(),
            meter: MeterReading {
                wall_s: 1.0,
                server_cpu_s: cpu_s,
                ..MeterReading::default()
            },
        }
    }

    #[test]
    fn fast_passes_merge_and_ratios_compare_with_them() {
        let mut r = ReconnectReport {
            clients: 10,
            concurrency: 2,
            tls: "starttls".into(),
            ..ReconnectReport::default()
        };
        r.add(pass("classic", "classic", 8, 5, 0.08));
        r.add(pass("sasl2", "sasl2", 6, 3, 0.06));
        r.add(pass("fast_first", "fast", 3, 2, 0.03));
        r.add(pass("fast", "fast", 2, 2, 0.02));
        r.add(pass("fast", "fast", 2, 2, 0.02));
        assert_eq!(r.passes.len(), 4);
        assert_eq!(r.fast_passes, 2);
        assert!(r.ok());
        let fast = r.find("fast").expect("merged");
        assert_eq!(fast.ok, 20);
        assert_eq!(fast.cpu_ms_per_login(), Some(2.0));
        let records = r.records("perch");
        let ratio = records.last().expect("ratio record");
        assert_eq!(ratio["against_fast"][0]["server_cpu_per_login_ratio"], 4.0);
        assert_eq!(ratio["against_fast"][0]["round_trips"], 5);
        assert_eq!(ratio["against_fast"][1]["fast_round_trips"], 2);
        assert!(
            r.table()
                .contains("classic M / FAST: server CPU per login x4.00")
        );
        r.passes[0].errors.push("x".into());
        assert!(!r.ok());
    }
}

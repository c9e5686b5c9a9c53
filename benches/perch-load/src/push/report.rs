//! What `push` measured, per phase: notifications per second at the app
//! server, message-to-notification latency, server CPU per notification,
//! and whether every message was notified exactly once.

use serde_json::{Value, json};

use crate::ctx::{meter_json, round};
use crate::histogram::Histogram;
use crate::procfs::MeterReading;

#[derive(Clone, Default)]
pub struct PushPhase {
    /// `push_latency` or `push`.
    pub name: String,
    pub senders: usize,
    /// Messages the phase was to send.
    pub messages: usize,
    pub sent: u64,
    /// Messages the server refused (an error came back).
    pub bounced: u64,
    /// Notifications the app server received.
    pub notifications: u64,
    /// The sum of their `message-count` fields.
    pub counted_messages: u64,
    /// Notifications for no message in flight, or for no known account.
    pub unexpected: u64,
    /// First message sent to last notification received.
    pub notify_s: Option<f64>,
    pub latency: Histogram,
    pub errors: Vec<String>,
    pub meter: MeterReading,
}

impl PushPhase {
    /// Every message sent, notified once, counting one message.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
            && self.bounced == 0
            && self.sent == self.messages as u64
            && self.notifications == self.sent
            && self.counted_messages == self.sent
            && self.unexpected == 0
    }

    pub fn per_s(&self) -> Option<f64> {
        self.notify_s
            .filter(|&s| s > 0.0)
            .map(|s| self.notifications as f64 / s)
    }

    /// Server CPU milliseconds per notification.
    pub fn cpu_ms_per_notification(&self) -> Option<f64> {
        (self.notifications > 0)
            .then(|| 1000.0 * self.meter.server_cpu_s / self.notifications as f64)
    }

    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        self.latency.quantile(q).map(|ns| ns as f64 / 1e6)
    }
}

#[derive(Clone, Default)]
pub struct PushReport {
    pub accounts: usize,
    pub phases: Vec<PushPhase>,
}

impl PushReport {
    pub fn ok(&self) -> bool {
        !self.phases.is_empty() && self.phases.iter().all(PushPhase::ok)
    }

    pub fn records(&self, label: &str) -> Vec<Value> {
        let ms = |v: Option<f64>| v.map(|v| round(v, 3));
        self.phases
            .iter()
            .map(|p| {
                let mut rec = json!({
                    "scenario": p.name, "label": label, "accounts": self.accounts,
                    "senders": p.senders, "messages": p.messages, "sent": p.sent,
                    "bounced": p.bounced, "notifications": p.notifications,
                    "counted_messages": p.counted_messages, "unexpected": p.unexpected,
                    "all_notified": p.ok(),
                    "notify_s": p.notify_s.map(|s| round(s, 3)),
                    "notifications_per_s": p.per_s().map(|v| round(v, 1)),
                    "latency": {
                        "n": p.latency.count(), "p50_ms": ms(p.latency_ms(0.5)),
                        "p95_ms": ms(p.latency_ms(0.95)), "p99_ms": ms(p.latency_ms(0.99)),
                        "max_ms": ms(Some(p.latency.max() as f64 / 1e6)),
                    },
                    "server_cpu_ms_per_notification": ms(p.cpu_ms_per_notification()),
                    "errors": p.errors.len(),
                    "error_samples": p.errors.iter().take(3).collect::<Vec<_>>(),
                });
                if let (Value::Object(r), Value::Object(m)) = (&mut rec, meter_json(&p.meter)) {
                    r.extend(m);
                }
                rec
            })
            .collect()
    }

    pub fn table(&self) -> String {
        let f = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
        let mut out = format!(
            "push: {} offline accounts, coalesce_secs 0\n\
             {:<14} {:>7} {:>7} {:>9} {:>10} {:>9} {:>9} {:>11}  all notified\n",
            self.accounts,
            "phase",
            "senders",
            "sent",
            "notified",
            "notif/s",
            "p50 ms",
            "p95 ms",
            "CPU ms/ntf"
        );
        for p in &self.phases {
            out.push_str(&format!(
                "{:<14} {:>7} {:>7} {:>9} {:>10} {:>9} {:>9} {:>11}  {}\n",
                p.name,
                p.senders,
                p.sent,
                p.notifications,
                f(p.per_s(), 0),
                f(p.latency_ms(0.5), 2),
                f(p.latency_ms(0.95), 2),
                f(p.cpu_ms_per_notification(), 3),
                if p.ok() { "yes" } else { "NO" },
            ));
            if !p.ok() {
                out.push_str(&format!(
                    "  {} messages to send, {} sent, {} bounced, {} notifications counting {} \
                     messages, {} unexpected{}\n",
                    p.messages,
                    p.sent,
                    p.bounced,
                    p.notifications,
                    p.counted_messages,
                    p.unexpected,
                    p.errors
                        .first()
                        .map_or(String::new(), |e| format!("; e.g. {e}"))
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_is_ok_only_with_every_message_notified_once() {
        let mut p = PushPhase {
            name: "push".into(),
            senders: 2,
            messages: 4,
            sent: 4,
            notifications: 4,
            counted_messages: 4,
            notify_s: Some(2.0),
            meter: MeterReading {
                server_cpu_s: 0.008,
                ..MeterReading::default()
            },
            ..PushPhase::default()
        };
        assert!(p.ok());
        assert_eq!(p.per_s(), Some(2.0));
        assert_eq!(p.cpu_ms_per_notification(), Some(2.0));
        let report = PushReport {
            accounts: 4,
            phases: vec![p.clone()],
        };
        assert!(report.ok());
        assert_eq!(report.records("perch")[0]["all_notified"], true);
        p.counted_messages = 5;
        assert!(!p.ok(), "a coalesced or duplicated count");
        p.counted_messages = 4;
        p.notifications = 3;
        assert!(!p.ok());
        let report = PushReport {
            accounts: 4,
            phases: vec![p],
        };
        assert!(report.table().contains("NO"));
    }
}

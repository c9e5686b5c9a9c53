//! Is the server flat? The samples of the warm-up (the first `--warmup`
//! seconds, 60 by default) set the marks: no later sample may hold more
//! resident memory than the warm-up's high-water mark (the kernel's
//! VmHWM at its end, so a peak between two samples counts) plus 10 %, or
//! more descriptors than the warm-up's most plus 10 %. CPU per message is
//! noisier (10 ms ticks, and the machine's other work slows the server's
//! caches), and the server's CPU in a sample is spent on logins, logouts
//! and TLS handshakes as much as on messages, so it is compared over
//! windows as long as the warm-up: the CPU seconds of each window divided
//! by the messages sent in it, the first window after the ramp (while the
//! clients first log in, a sample's CPU is mostly logins) against every
//! later one. A warm-up that ends before the ramp does is stretched to the
//! first sample after it.

/// One reading, covering the `interval_s` up to `t_s` since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    pub interval_s: f64,
    /// Clients logged in at the reading.
    pub connected: u64,
    /// Clients that had logged in at least once by the reading.
    pub came_in: u64,
    pub logins: u64,
    pub logouts: u64,
    pub login_errors: u64,
    pub lost: u64,
    /// Chat and groupchat messages the clients sent in the interval.
    pub sent: u64,
    /// Messages (copies) the clients received in the interval.
    pub delivered: u64,
    pub bounced: u64,
    pub rss_kib: u64,
    /// The server's VmHWM at the reading.
    pub hwm_kib: u64,
    pub fds: u64,
    /// Server CPU seconds in the interval.
    pub cpu_s: f64,
    /// Cores busy with anything but the server and this tool, on average
    /// over the interval (other work slows the server's CPU per message).
    pub other_cores: f64,
    /// Cores this tool used, on average over the interval.
    pub tool_cores: f64,
}

impl Sample {
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        (self.sent > 0).then(|| 1e6 * self.cpu_s / self.sent as f64)
    }
}

/// Limit on growth over the warm-up's marks.
pub const TOLERANCE: f64 = 0.10;

/// Other work on the machine, in cores, past which CPU per message is
/// reported but not judged: on a shared machine the server's CPU time for
/// the same work grows with its neighbours' (caches, and in a virtual
/// machine the host's other guests), by more than the tolerance.
pub const BUSY_MACHINE_CORES: f64 = 0.3;

#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub what: &'static str,
    pub warm: f64,
    pub worst_later: f64,
    pub flat: bool,
    /// Why this check is reported but does not count, if it does not.
    pub not_judged: Option<String>,
}

impl Check {
    pub fn growth(&self) -> f64 {
        if self.warm > 0.0 {
            self.worst_later / self.warm - 1.0
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The warm-up as used (stretched past the ramp if needed).
    pub warmup_s: f64,
    pub stretched: bool,
    pub ramp_done_s: Option<f64>,
    pub checks: Vec<Check>,
    /// Why there is no verdict on something (too few samples).
    pub notes: Vec<String>,
}

impl Verdict {
    /// All three checks made, and every judged one passed.
    pub fn flat(&self) -> bool {
        self.checks.len() == 3 && self.checks.iter().all(|c| c.flat || c.not_judged.is_some())
    }
}

fn mean_other_cores(samples: &[Sample]) -> f64 {
    let wall: f64 = samples.iter().map(|s| s.interval_s).sum();
    let busy: f64 = samples.iter().map(|s| s.other_cores * s.interval_s).sum();
    if wall > 0.0 { busy / wall } else { 0.0 }
}

fn ratio_us(samples: &[Sample]) -> Option<f64> {
    let sent: u64 = samples.iter().map(|s| s.sent).sum();
    let cpu: f64 = samples.iter().map(|s| s.cpu_s).sum();
    (sent > 0).then(|| 1e6 * cpu / sent as f64)
}

/// Judges `samples` (in order) with a warm-up of `warmup_s`; the ramp
/// ended with the first sample by which 99 % of the `target` clients had
/// logged in (once: with churn from the start, not all are in at once).
pub fn judge(samples: &[Sample], warmup_s: f64, target: u64, cpu_tolerance: f64) -> Verdict {
    let ramp = samples
        .iter()
        .position(|s| s.came_in as f64 >= 0.99 * target as f64);
    let ramp_done_s = ramp.map(|i| samples[i].t_s);
    let mut notes = Vec::new();
    let mut warmup = warmup_s;
    let mut stretched = false;
    // Marks taken before every client is in would be too low.
    // Half an interval of slack: a sample is taken a little after its
    // time, and one due at the warm-up's end belongs to it.
    let slack = 0.5 * samples.first().map_or(0.0, |s| s.interval_s);
    if let Some(first_after) = ramp.and_then(|i| samples.get(i + 1))
        && first_after.t_s > warmup + slack
    {
        warmup = first_after.t_s;
        stretched = true;
    }
    if ramp.is_none() {
        notes.push(format!(
            "fewer than 99 % of the {target} clients ever logged in"
        ));
    }
    let split = samples
        .iter()
        .position(|s| s.t_s > warmup + slack)
        .unwrap_or(samples.len());
    let (warm, later) = samples.split_at(split);
    let mut checks = Vec::new();
    if warm.is_empty() || later.is_empty() {
        notes.push(format!(
            "{} samples in the warm-up and {} after it: no verdict",
            warm.len(),
            later.len()
        ));
        return Verdict {
            warmup_s: warmup,
            stretched,
            ramp_done_s,
            checks,
            notes,
        };
    }
    let rss_mark = warm
        .iter()
        .map(|s| s.rss_kib.max(s.hwm_kib))
        .max()
        .unwrap_or(0) as f64;
    let rss_later = later.iter().map(|s| s.rss_kib).max().unwrap_or(0) as f64;
    checks.push(Check {
        what: "RSS (KiB)",
        warm: rss_mark,
        worst_later: rss_later,
        flat: rss_later <= rss_mark * (1.0 + TOLERANCE),
        not_judged: None,
    });
    let fd_mark = warm.iter().map(|s| s.fds).max().unwrap_or(0) as f64;
    let fd_later = later.iter().map(|s| s.fds).max().unwrap_or(0) as f64;
    checks.push(Check {
        what: "open descriptors",
        warm: fd_mark,
        worst_later: fd_later,
        flat: fd_later <= fd_mark * (1.0 + TOLERANCE),
        not_judged: None,
    });
    // CPU: the first warm-up-long window after the ramp is the reference,
    // every later one of the same length is compared with it (a short
    // remainder joins the window before it).
    let interval = samples[0].interval_s.max(1e-3);
    let per_window = ((warmup_s / interval).round() as usize).max(1);
    let after_ramp = ramp.map_or(&[][..], |i| &samples[i + 1..]);
    let mut windows: Vec<&[Sample]> = after_ramp.chunks(per_window).collect();
    if windows.len() > 1
        && let Some(last) = windows.last()
        && 2 * last.len() < per_window
    {
        let n = after_ramp.len();
        let merged = &after_ramp[n - last.len() - per_window..];
        windows.pop();
        windows.pop();
        windows.push(merged);
    }
    match windows.split_first() {
        Some((first, rest)) if !rest.is_empty() => match ratio_us(first) {
            Some(reference) => {
                let worst = rest.iter().filter_map(|w| ratio_us(w)).fold(0.0, f64::max);
                let busiest = windows
                    .iter()
                    .map(|w| mean_other_cores(w))
                    .fold(0.0, f64::max);
                checks.push(Check {
                    what: "server CPU per message (µs)",
                    warm: reference,
                    worst_later: worst,
                    flat: worst <= reference * (1.0 + cpu_tolerance),
                    not_judged: (busiest > BUSY_MACHINE_CORES).then(|| {
                        format!(
                            "other work kept {busiest:.1} cores busy in a window \
                             (over {BUSY_MACHINE_CORES}): CPU per message not judged"
                        )
                    }),
                });
            }
            None => notes.push("no messages after the ramp: no CPU reference".to_string()),
        },
        _ => notes.push(format!(
            "fewer than two {:.0}-s windows after the ramp: no CPU verdict",
            per_window as f64 * interval
        )),
    }
    Verdict {
        warmup_s: warmup,
        stretched,
        ramp_done_s,
        checks,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, f: impl Fn(usize) -> (u64, u64, f64)) -> Vec<Sample> {
        (1..=n)
            .map(|i| {
                let (rss, fds, cpu) = f(i);
                Sample {
                    t_s: 10.0 * i as f64,
                    interval_s: 10.0,
                    connected: if i >= 2 { 1000 } else { 400 },
                    came_in: if i >= 2 { 1000 } else { 400 },
                    sent: 1000,
                    rss_kib: rss,
                    hwm_kib: rss,
                    fds,
                    cpu_s: cpu,
                    ..Sample::default()
                }
            })
            .collect()
    }

    #[test]
    fn a_flat_server_passes() {
        let s = series(12, |i| (50_000 + (i as u64 % 3) * 100, 1010, 0.1));
        let v = judge(&s, 60.0, 1000, TOLERANCE);
        assert!(v.flat(), "{v:#?}");
        assert_eq!(v.checks.len(), 3);
        assert_eq!(v.ramp_done_s, Some(20.0));
        assert!(!v.stretched);
        assert!((v.checks[2].warm - 100.0).abs() < 1e-6);
        assert!((v.checks[2].worst_later - 100.0).abs() < 1e-6);
    }

    #[test]
    fn creeping_memory_or_cpu_fails() {
        let leak = series(12, |i| (50_000 + i as u64 * 2_000, 1010, 0.1));
        let v = judge(&leak, 60.0, 1000, TOLERANCE);
        assert!(!v.flat() && !v.checks[0].flat && v.checks[1].flat, "{v:#?}");
        let slower = series(12, |i| (50_000, 1010, if i > 9 { 0.13 } else { 0.1 }));
        let v = judge(&slower, 60.0, 1000, TOLERANCE);
        assert!(!v.checks[2].flat && v.checks[0].flat, "{v:#?}");
        let fds = series(12, |i| (50_000, 1000 + i as u64 * 20, 0.1));
        assert!(!judge(&fds, 60.0, 1000, TOLERANCE).checks[1].flat);
        // The same slowdown while the machine was busy with other work:
        // reported, not judged.
        let mut busy = slower.clone();
        busy[10].other_cores = 2.0;
        let v = judge(&busy, 60.0, 1000, TOLERANCE);
        assert!(!v.checks[2].flat && v.checks[2].not_judged.is_some());
        assert!(v.flat(), "{v:#?}");
    }

    #[test]
    fn the_warm_up_waits_for_the_ramp() {
        let s = series(6, |_| (50_000, 1010, 0.1));
        let v = judge(&s, 10.0, 1000, TOLERANCE);
        // The ramp ends at 20 s; the first sample wholly after it ends at 30 s.
        assert!(v.stretched);
        assert_eq!(v.warmup_s, 30.0);
        assert!(v.flat(), "{v:#?}");
        // Too short for two CPU windows after the ramp: no CPU check.
        let v = judge(&s, 30.0, 1000, TOLERANCE);
        assert_eq!(v.checks.len(), 2);
        assert!(!v.notes.is_empty() && !v.flat());
        let never = judge(&s, 10.0, 5000, TOLERANCE);
        assert!(!never.notes.is_empty());
        assert!(!judge(&s[..1], 60.0, 1000, TOLERANCE).flat());
    }
}

//! What the server process costs, read from `/proc`: resident memory (now
//! and peak), CPU seconds, threads and descriptors — for one PID or a PID
//! and its descendants (ejabberd runs beam.smp plus helpers). Also the
//! CPU this tool and the whole machine used, so a reader can see whether
//! the tool or other load limited a figure.

use std::collections::HashMap;
use std::fs;

/// Linux reports CPU times in USER_HZ, which is 100 on every architecture
/// Linux supports today (it is not the kernel's CONFIG_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub rss_kib: u64,
    /// Sum of each process's own peak (`VmHWM`).
    pub hwm_kib: u64,
    pub cpu_s: f64,
    pub threads: u64,
    pub fds: u64,
    pub processes: u64,
}

/// The server being measured, or nothing (e.g. in-process tests).
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pid: Option<u32>,
    tree: bool,
}

impl Probe {
    pub fn new(pid: Option<u32>, include_children: bool) -> Probe {
        Probe {
            pid,
            tree: include_children,
        }
    }

    pub fn is_set(&self) -> bool {
        self.pid.is_some()
    }

    /// The PIDs to sum over (computed anew: children come and go).
    pub fn pids(&self) -> Vec<u32> {
        match self.pid {
            None => Vec::new(),
            Some(pid) if self.tree => descendants(pid),
            Some(pid) => vec![pid],
        }
    }

    pub fn snapshot(&self) -> Option<Snapshot> {
        let pids = self.pids();
        let first = *pids.first()?;
        let mut s = Snapshot::default();
        for &p in &pids {
            let Some(status) = fs::read_to_string(format!("/proc/{p}/status")).ok() else {
                continue;
            };
            s.rss_kib += status_kib(&status, "VmRSS").unwrap_or(0);
            s.hwm_kib += status_kib(&status, "VmHWM").unwrap_or(0);
            s.threads += status_kib(&status, "Threads").unwrap_or(0);
            s.cpu_s += cpu_seconds(p).unwrap_or(0.0);
            s.processes += 1;
        }
        s.fds = fs::read_dir(format!("/proc/{first}/fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        (s.processes > 0).then_some(s)
    }

    pub fn cpu_s(&self, pids: &[u32]) -> f64 {
        self.cpu_split(pids).total()
    }

    /// CPU seconds over `pids`, split into user and kernel time.
    pub fn cpu_split(&self, pids: &[u32]) -> CpuSplit {
        pids.iter()
            .filter_map(|&p| cpu_split(p))
            .fold(CpuSplit::default(), |a, b| CpuSplit {
                user_s: a.user_s + b.user_s,
                kernel_s: a.kernel_s + b.kernel_s,
            })
    }

    /// Nanoseconds every thread of `pids` spent on a CPU (the first field
    /// of `/proc/PID/task/TID/schedstat`): the same time as utime + stime,
    /// counted by the scheduler to the nanosecond rather than in 10 ms
    /// ticks, for phases too short for the ticks (one archive query).
    pub fn sched_ns(&self, pids: &[u32]) -> u64 {
        pids.iter()
            .filter_map(|&p| fs::read_dir(format!("/proc/{p}/task")).ok())
            .flat_map(|dir| dir.flatten())
            .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    pub fn rss_kib(&self, pids: &[u32]) -> u64 {
        pids.iter()
            .filter_map(|&p| {
                fs::read_to_string(format!("/proc/{p}/status"))
                    .ok()
                    .and_then(|s| status_kib(&s, "VmRSS"))
            })
            .sum()
    }
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Fields of `/proc/PID/stat` after the command name (which may contain
/// spaces and parentheses, hence the search for the last `)`).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = s.rfind(')')?;
    Some(
        s.get(close + 2..)?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    )
}

/// CPU time spent in the process's own code and in the kernel on its
/// behalf (system calls, and for loopback TCP the receiver's side of every
/// segment it sends, which the kernel processes in the sender's context).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSplit {
    pub user_s: f64,
    pub kernel_s: f64,
}

impl CpuSplit {
    pub fn total(self) -> f64 {
        self.user_s + self.kernel_s
    }
}

/// utime and stime of one process, in seconds.
pub fn cpu_split(pid: u32) -> Option<CpuSplit> {
    let f = stat_fields(&pid.to_string())?;
    // Field 14 (utime) and 15 (stime); the slice starts at field 3.
    let user: f64 = f.get(11)?.parse().ok()?;
    let system: f64 = f.get(12)?.parse().ok()?;
    Some(CpuSplit {
        user_s: user / TICKS_PER_SECOND,
        kernel_s: system / TICKS_PER_SECOND,
    })
}

/// utime + stime of one process, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_split(pid).map(CpuSplit::total)
}

/// CPU seconds this process has used.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Busy and total CPU seconds of the whole machine (all cores).
pub fn machine_cpu() -> (f64, f64) {
    let Ok(s) = fs::read_to_string("/proc/stat") else {
        return (0.0, 0.0);
    };
    let Some(line) = s.lines().next() else {
        return (0.0, 0.0);
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    ((total - idle) / TICKS_PER_SECOND, total / TICKS_PER_SECOND)
}

fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(pid) = name.parse::<u32>() else {
                continue;
            };
            if let Some(ppid) = stat_fields(name)
                .and_then(|f| f.get(1).cloned())
                .and_then(|p| p.parse::<u32>().ok())
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        if out.len() > 10_000 {
            break;
        }
        out.push(p);
        todo.extend(children.get(&p).into_iter().flatten());
    }
    out
}

/// CPU accounting over one phase.
pub struct Meter {
    pids: Vec<u32>,
    probe: Probe,
    start: std::time::Instant,
    server0: CpuSplit,
    own0: f64,
    machine0: (f64, f64),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct MeterReading {
    pub wall_s: f64,
    pub server_cpu_s: f64,
    /// The part of `server_cpu_s` spent in the kernel.
    pub server_kernel_cpu_s: f64,
    pub tool_cpu_s: f64,
    /// Cores busy with anything but the server and this tool, on average.
    pub other_busy_cores: f64,
}

impl Meter {
    pub fn start(probe: &Probe) -> Meter {
        let pids = probe.pids();
        Meter {
            server0: probe.cpu_split(&pids),
            pids,
            probe: probe.clone(),
            start: std::time::Instant::now(),
            own0: own_cpu_seconds(),
            machine0: machine_cpu(),
        }
    }

    pub fn stop(&self) -> MeterReading {
        let wall_s = self.start.elapsed().as_secs_f64();
        let server = self.probe.cpu_split(&self.pids);
        let server_cpu_s = (server.total() - self.server0.total()).max(0.0);
        let server_kernel_cpu_s = (server.kernel_s - self.server0.kernel_s).max(0.0);
        let tool_cpu_s = (own_cpu_seconds() - self.own0).max(0.0);
        let machine = machine_cpu();
        let busy = machine.0 - self.machine0.0;
        // In-process servers (tests) are part of our own CPU: count once.
        let server_outside = if self.pids.contains(&std::process::id()) {
            0.0
        } else {
            server_cpu_s
        };
        let other = (busy - server_outside - tool_cpu_s).max(0.0);
        MeterReading {
            wall_s,
            server_cpu_s,
            server_kernel_cpu_s,
            tool_cpu_s,
            other_busy_cores: if wall_s > 0.0 { other / wall_s } else { 0.0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let probe = Probe::new(Some(std::process::id()), false);
        let s = probe.snapshot().expect("own /proc entry");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib / 2);
        assert!(s.threads >= 1 && s.fds >= 1);
        assert!(own_cpu_seconds() >= 0.0);
        let split = cpu_split(std::process::id()).expect("own stat");
        assert!(split.user_s >= 0.0 && split.kernel_s >= 0.0);
        assert_eq!(
            cpu_seconds(std::process::id()).map(|t| t >= split.total()),
            Some(true)
        );
        let me = Probe::new(Some(std::process::id()), false);
        let before = me.sched_ns(&me.pids());
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(
            x != 1 && me.sched_ns(&me.pids()) > before,
            "schedstat counts"
        );
        let tree = Probe::new(Some(std::process::id()), true);
        assert!(tree.pids().contains(&std::process::id()));
        assert!(Probe::default().snapshot().is_none());
        assert_eq!(status_kib("VmRSS:\t  1234 kB\n", "VmRSS"), Some(1234));
        assert_eq!(status_kib("VmRSSX: 1 kB\n", "VmRSS"), None);
    }
}

//! Counting a server's `fsync` and `fdatasync` calls over one phase, from
//! outside: `perf stat` on the two syscall tracepoints (the kernel counts;
//! the server runs at full speed), or `strace -f -c` (every system call of
//! the server stops it while attached, so the phase runs slower and its
//! commits may batch differently: a fallback where perf cannot trace).
//! Either needs root or ptrace/perf rights over the server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use crate::mam_settings::FsyncTool;

/// A counter attached to the server's processes.
pub struct FsyncCounter {
    tool: FsyncTool,
    child: Child,
    out: PathBuf,
}

/// How long the counter is given to attach before the phase starts: neither
/// tool says when it is ready.
const ATTACH: Duration = Duration::from_millis(700);

impl FsyncCounter {
    /// Attaches `tool` to `pids`; `Ok(None)` for `FsyncTool::None` or no pids.
    pub async fn start(tool: FsyncTool, pids: &[u32]) -> Result<Option<FsyncCounter>, String> {
        if tool == FsyncTool::None || pids.is_empty() {
            return Ok(None);
        }
        let list: Vec<String> = pids.iter().map(u32::to_string).collect();
        let out = std::env::temp_dir().join(format!(
            "perch-load-fsyncs-{}-{}.txt",
            std::process::id(),
            crate::ctx::now_ns()
        ));
        let mut cmd = match tool {
            FsyncTool::Perf => {
                let mut c = Command::new("perf");
                c.args([
                    "stat",
                    "-x,",
                    "-e",
                    "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync",
                    "-p",
                    &list.join(","),
                    "-o",
                ])
                .arg(&out);
                c
            }
            FsyncTool::Strace => {
                let mut c = Command::new("strace");
                c.args(["-f", "-c", "-e", "trace=fsync,fdatasync", "-o"])
                    .arg(&out);
                for p in &list {
                    c.args(["-p", p]);
                }
                c
            }
            FsyncTool::None => return Ok(None),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", tool.name()))?;
        smol::Timer::after(ATTACH).await;
        Ok(Some(FsyncCounter { tool, child, out }))
    }

    /// Detaches (SIGINT makes both print their counts) and returns the
    /// number of fsync and fdatasync calls seen.
    pub async fn stop(mut self) -> Result<u64, String> {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        // Bounded: a counter that does not exit within 10 s is killed.
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            smol::Timer::after(Duration::from_millis(100)).await;
        }
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let text = std::fs::read_to_string(&self.out)
            .map_err(|e| format!("{} wrote no counts: {e}", self.tool.name()))?;
        let _ = std::fs::remove_file(&self.out);
        match self.tool {
            FsyncTool::Perf => parse_perf(&text),
            FsyncTool::Strace => parse_strace(&text),
            FsyncTool::None => Some(0),
        }
        .ok_or_else(|| {
            format!(
                "{}: no fsync counts in its output: {}",
                self.tool.name(),
                text.chars().take(300).collect::<String>()
            )
        })
    }
}

/// `perf stat -x,` lines: `count,unit,event,…`; "<not counted>" is 0.
fn parse_perf(text: &str) -> Option<u64> {
    let mut found = false;
    let mut total = 0;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() < 3
            || !matches!(
                fields[2],
                "syscalls:sys_enter_fsync" | "syscalls:sys_enter_fdatasync"
            )
        {
            continue;
        }
        found = true;
        total += fields[0].trim().parse::<u64>().unwrap_or(0);
    }
    found.then_some(total)
}

/// `strace -c` summary rows: `% time  seconds  usecs/call  calls  [errors]
/// syscall`; the calls are the fourth column either way. No row for a call
/// never made: an empty table is 0.
fn parse_strace(text: &str) -> Option<u64> {
    if !text.contains("syscall") {
        return None;
    }
    Some(
        text.lines()
            .filter_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                match cols.last() {
                    Some(&"fsync") | Some(&"fdatasync") if cols.len() >= 5 => {
                        cols[3].parse::<u64>().ok()
                    }
                    _ => None,
                }
            })
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_tools_summaries() {
        let perf = "# started on Sun Dec  6 09:20:00 2026\n\n\
                    37,,syscalls:sys_enter_fsync,13031673,100.00,,\n\
                    5,,syscalls:sys_enter_fdatasync,13031673,100.00,,\n";
        assert_eq!(parse_perf(perf), Some(42));
        assert_eq!(
            parse_perf("<not counted>,,syscalls:sys_enter_fsync,0,0.00,,\n"),
            Some(0)
        );
        assert_eq!(parse_perf("perf: permission denied\n"), None);
        let strace = "% time     seconds  usecs/call     calls    errors syscall\n\
                      ------ ----------- ----------- --------- --------- ----------------\n\
                      100.00    0.001000          20        50           fdatasync\n\
                      0.00    0.000000           0         3         1 fsync\n\
                      ------ ----------- ----------- --------- --------- ----------------\n\
                      100.00    0.001000          18        53         1 total\n";
        assert_eq!(parse_strace(strace), Some(53));
        assert_eq!(
            parse_strace("% time     seconds  usecs/call     calls    errors syscall\n"),
            Some(0)
        );
        assert_eq!(
            parse_strace("strace: attach: ptrace(PTRACE_SEIZE, 1): EPERM"),
            None
        );
        assert_eq!(FsyncTool::parse("strace"), Some(FsyncTool::Strace));
    }
}

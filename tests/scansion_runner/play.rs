//! Playing one script against a fresh server (FORMAT.md §3, §5).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use perch::testing::{TestOptions, TestServer};

use super::client::{Client, RecvError};
use super::matcher::{self, Captures};
use super::script::{self, Action, Script, Step};
use super::tree::{CLIENT_NS, XElem};

/// Timing and server settings for a run.
#[derive(Clone, Debug)]
pub struct PlayOptions {
    /// TOML appended to the test server's configuration.
    pub extra_config: String,
    /// How long a `receives` step waits for a matching stanza.
    pub step_timeout: Duration,
    /// How long `receives: nothing` listens.
    pub nothing_wait: Duration,
    /// Pause before a send whose client differs from the previous action's
    /// (the server must see stanzas from different connections in script
    /// order, FORMAT.md §5).
    pub switch_pause: Duration,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            extra_config: String::new(),
            step_timeout: perch::testing::scaled(Duration::from_secs(5)),
            nothing_wait: Duration::from_secs(1),
            switch_pause: Duration::from_millis(100),
        }
    }
}

/// Why a script failed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// One line: where and why.
    pub summary: String,
    /// The full report: action, expected stanza, recent traffic.
    pub details: String,
}

impl Failure {
    fn plain(summary: String) -> Failure {
        Failure {
            details: summary.clone(),
            summary,
        }
    }
}

/// A step failure before it is put in context.
struct StepError {
    reason: String,
    /// The stanza the step expected or sent, after substitution, with a
    /// label saying which.
    stanza: Option<(&'static str, String)>,
    /// Stanzas skipped during this step, with why each did not match.
    skipped: Vec<(String, String)>,
}

impl StepError {
    fn new(reason: impl Into<String>) -> StepError {
        StepError {
            reason: reason.into(),
            stanza: None,
            skipped: Vec::new(),
        }
    }
}

/// Parses and plays a script; `Ok` if every step passed.
pub fn play_script(text: &str, opts: &PlayOptions) -> Result<(), Failure> {
    let setup = script_setup(text)?;
    let accounts = setup.accounts;
    let mut extra_config = opts.extra_config.clone();
    for line in &setup.server_config {
        extra_config.push('\n');
        extra_config.push_str(line);
    }
    let server = TestServer::start(TestOptions {
        accounts,
        extra_config,
        ..TestOptions::default()
    })
    .map_err(|e| Failure::plain(format!("the test server did not start: {e}")))?;
    let result = play_script_at(text, opts, server.c2s_addr());
    server.stop();
    result
}

/// What a script needs of its server before it plays.
pub struct ScriptSetup {
    /// The accounts its clients log in to (bare JID, password).
    pub accounts: Vec<(String, String)>,
    /// Its `# perch-config:` lines, to append to the server's config.
    pub server_config: Vec<String>,
}

pub fn script_setup(text: &str) -> Result<ScriptSetup, Failure> {
    let script =
        script::parse_script(text).map_err(|e| Failure::plain(format!("script error: {e}")))?;
    Ok(ScriptSetup {
        accounts: accounts(&script).map_err(Failure::plain)?,
        server_config: script.server_config.clone(),
    })
}

/// Plays a script against a server that already runs (with the accounts
/// of [`script_setup`]), e.g. one part before and one after a restart.
pub fn play_script_at(
    text: &str,
    opts: &PlayOptions,
    addr: std::net::SocketAddr,
) -> Result<(), Failure> {
    let script =
        script::parse_script(text).map_err(|e| Failure::plain(format!("script error: {e}")))?;
    let mut player = Player {
        script: &script,
        opts,
        addr,
        clients: HashMap::new(),
        full_jids: HashMap::new(),
        captures: Captures::new(),
        previous_actor: None,
    };
    let mut result = Ok(());
    for (index, step) in script.steps.iter().enumerate() {
        if let Err(e) = player.run_step(step) {
            result = Err(player.report(index, step, e));
            break;
        }
    }
    for (_, client) in player.clients.drain() {
        client.disconnect();
    }
    result
}

/// One account per distinct bare JID.
fn accounts(script: &Script) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for c in &script.clients {
        let bare = c.bare_jid().to_string();
        match out.iter().find(|(jid, _)| *jid == bare) {
            Some((_, password)) if *password != c.password => {
                return Err(format!(
                    "script error: line {}: {} has another password than an earlier client with the JID {bare}",
                    c.line, c.name
                ));
            }
            Some(_) => {}
            None => out.push((bare, c.password.clone())),
        }
    }
    Ok(out)
}

struct Player<'a> {
    script: &'a Script,
    opts: &'a PlayOptions,
    addr: std::net::SocketAddr,
    /// Connected clients by name.
    clients: HashMap<String, Client>,
    /// Full JIDs bound by each client's last connection.
    full_jids: HashMap<String, String>,
    captures: Captures,
    previous_actor: Option<String>,
}

impl Player<'_> {
    fn run_step(&mut self, step: &Step) -> Result<(), StepError> {
        let switched = self
            .previous_actor
            .as_ref()
            .is_some_and(|prev| *prev != step.client);
        self.previous_actor = Some(step.client.clone());
        match &step.action {
            Action::Connects => {
                if let Some(old) = self.clients.remove(&step.client) {
                    old.disconnect();
                }
                let decl = self
                    .script
                    .clients
                    .iter()
                    .find(|c| c.name == step.client)
                    .ok_or_else(|| StepError::new(format!("no client named {:?}", step.client)))?;
                let client = Client::connect(self.addr, decl)
                    .map_err(|e| StepError::new(format!("connect failed: {e}")))?;
                self.full_jids
                    .insert(step.client.clone(), client.full_jid.clone());
                self.clients.insert(step.client.clone(), client);
                Ok(())
            }
            Action::Disconnects => {
                if let Some(client) = self.clients.remove(&step.client) {
                    client.disconnect();
                }
                Ok(())
            }
            Action::Sends(block) => {
                let text = self.substitute(&block.text)?;
                let text = self.substitute_captures(&text)?;
                let elems = script::parse_block(&text, block.first_line).map_err(|e| {
                    StepError::new(format!("malformed XML after substitution: {e}"))
                })?;
                if switched {
                    std::thread::sleep(self.opts.switch_pause);
                }
                let client = self.client(&step.client)?;
                for elem in &elems {
                    let xml = elem.to_xml(CLIENT_NS);
                    client.send_raw(&xml).map_err(|e| StepError {
                        stanza: Some(("sending", xml.clone())),
                        ..StepError::new(e)
                    })?;
                }
                Ok(())
            }
            Action::Receives(block) => {
                let text = self.substitute(&block.text)?;
                let elems = script::parse_block(&text, block.first_line).map_err(|e| {
                    StepError::new(format!("malformed XML after substitution: {e}"))
                })?;
                for expected in &elems {
                    self.receive(&step.client, expected).map_err(|mut e| {
                        let shown = if elems.len() == 1 {
                            text.clone()
                        } else {
                            expected.to_xml(CLIENT_NS)
                        };
                        e.stanza = Some(("expected", shown));
                        e
                    })?;
                }
                Ok(())
            }
            Action::ReceivesNothing => {
                let deadline = Instant::now() + self.opts.nothing_wait;
                let client = self.client(&step.client)?;
                match client.next_stanza(deadline) {
                    Ok(stanza) => Err(StepError::new(format!(
                        "expected nothing, received {}",
                        stanza.to_xml(CLIENT_NS)
                    ))),
                    Err(RecvError::Timeout) => Ok(()),
                    Err(RecvError::Closed(reason)) => Err(StepError::new(format!(
                        "expected nothing, but the connection ended: {reason}"
                    ))),
                }
            }
        }
    }

    fn client(&mut self, name: &str) -> Result<&mut Client, StepError> {
        self.clients
            .get_mut(name)
            .ok_or_else(|| StepError::new(format!("{name} is not connected")))
    }

    /// Takes stanzas until one matches; the others are discarded.
    fn receive(&mut self, name: &str, expected: &XElem) -> Result<(), StepError> {
        let timeout = self.opts.step_timeout;
        let deadline = Instant::now() + timeout;
        let mut skipped: Vec<(String, String)> = Vec::new();
        let client = self
            .clients
            .get_mut(name)
            .ok_or_else(|| StepError::new(format!("{name} is not connected")))?;
        loop {
            match client.next_stanza(deadline) {
                Ok(stanza) => match matcher::matches(expected, &stanza, &mut self.captures) {
                    Ok(()) => return Ok(()),
                    Err(why) => skipped.push((stanza.to_xml(CLIENT_NS), why)),
                },
                Err(e) => {
                    let reason = match e {
                        RecvError::Timeout => {
                            format!("no matching stanza within {} s", timeout.as_secs_f32())
                        }
                        RecvError::Closed(reason) => {
                            format!("connection ended before a matching stanza: {reason}")
                        }
                    };
                    let reason = match skipped.last() {
                        Some((_, why)) => {
                            format!("{reason} ({} skipped; last: {why})", skipped.len())
                        }
                        None => reason,
                    };
                    return Err(StepError {
                        reason,
                        stanza: None,
                        skipped,
                    });
                }
            }
        }
    }

    /// A Perch extension: `{scansion:capture:NAME}` in a `sends` block is
    /// replaced by the value captured under NAME, so a script can send back
    /// an id the server gave (an archive id to page from, a message to
    /// retract).
    fn substitute_captures(&self, text: &str) -> Result<String, StepError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("{scansion:capture:") {
            out.push_str(&rest[..start]);
            let after = &rest[start + "{scansion:capture:".len()..];
            let end = after
                .find('}')
                .ok_or_else(|| StepError::new("unterminated capture".to_string()))?;
            let name = &after[..end];
            let value = self
                .captures
                .get(name)
                .ok_or_else(|| StepError::new(format!("nothing captured as {name}")))?;
            out.push_str(&super::tree::escape(value));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn substitute(&self, text: &str) -> Result<String, StepError> {
        script::substitute(text, |name, full| {
            let decl = self
                .script
                .clients
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| format!("no client named {name:?}"))?;
            if full {
                self.full_jids.get(name).cloned().ok_or_else(|| {
                    format!("{name} has not connected yet, so its full JID is unknown")
                })
            } else {
                Ok(decl.bare_jid().to_string())
            }
        })
        .map_err(StepError::new)
    }

    fn report(&self, index: usize, step: &Step, e: StepError) -> Failure {
        let summary = format!(
            "step {} (line {}) `{}`: {}",
            index + 1,
            step.line,
            step.source,
            e.reason
        );
        let mut details = summary.clone();
        if let Some((label, stanza)) = &e.stanza {
            let _ = write!(details, "\n  {label}:\n{}", indent(stanza, "    "));
        }
        const SHOWN: usize = 5;
        if !e.skipped.is_empty() {
            let _ = write!(
                details,
                "\n  received by {} during this step and not matching ({} in all, last {} shown):",
                step.client,
                e.skipped.len(),
                e.skipped.len().min(SHOWN)
            );
            for (xml, why) in e.skipped.iter().skip(e.skipped.len().saturating_sub(SHOWN)) {
                let _ = write!(details, "\n    {xml}\n      -> {why}");
            }
        } else if let Some(client) = self.clients.get(&step.client) {
            let recent: Vec<&str> = client.history().collect();
            if recent.is_empty() {
                let _ = write!(details, "\n  {} has received no stanza yet", step.client);
            } else {
                let _ = write!(
                    details,
                    "\n  last stanzas received by {} (oldest first):",
                    step.client
                );
                for xml in recent.iter().skip(recent.len().saturating_sub(SHOWN)) {
                    let _ = write!(details, "\n    {xml}");
                }
            }
        }
        Failure { summary, details }
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{}", l.trim_end().replace('\t', "  ")))
        .collect::<Vec<_>>()
        .join("\n")
}

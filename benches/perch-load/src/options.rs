//! Command-line options: `perch-load SCENARIO [--name value]...`, every
//! option with a default, every loop bounded by them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::conn::{TlsMode, Transport};
use crate::sasl::Mechanism;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Login,
    Idle,
    Chat,
    Muc,
    Churn,
    Register,
    Guess,
    Offline,
    Mam,
    Pep,
    Upload,
}

impl Scenario {
    pub const ALL: [Scenario; 11] = [
        Scenario::Login,
        Scenario::Idle,
        Scenario::Chat,
        Scenario::Muc,
        Scenario::Churn,
        Scenario::Register,
        Scenario::Guess,
        Scenario::Offline,
        Scenario::Mam,
        Scenario::Pep,
        Scenario::Upload,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Login => "login",
            Scenario::Idle => "idle",
            Scenario::Chat => "chat",
            Scenario::Muc => "muc",
            Scenario::Churn => "churn",
            Scenario::Register => "register",
            Scenario::Guess => "guess",
            Scenario::Offline => "offline",
            Scenario::Mam => "mam",
            Scenario::Pep => "pep",
            Scenario::Upload => "upload",
        }
    }
}

/// The `guess` scenario's attacks (see `scenario::guess`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuessMode {
    Interleaved,
    Parallel,
    Addresses,
}

impl GuessMode {
    pub const ALL: [GuessMode; 3] = [
        GuessMode::Interleaved,
        GuessMode::Parallel,
        GuessMode::Addresses,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GuessMode::Interleaved => "interleaved",
            GuessMode::Parallel => "parallel",
            GuessMode::Addresses => "addresses",
        }
    }

    pub fn parse(s: &str) -> Option<GuessMode> {
        GuessMode::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The third octet of the mode's source addresses (127.0.N.x): a mode
    /// never shares an address with another.
    pub(crate) fn subnet(self) -> u8 {
        match self {
            GuessMode::Interleaved => 1,
            GuessMode::Parallel => 2,
            GuessMode::Addresses => 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: Scenario,
    pub host: IpAddr,
    pub port: u16,
    pub domain: String,
    pub muc_domain: String,
    /// Federation: the second client of each pair logs in to this c2s port
    /// (of --host) in `peer_domain`, so chat messages cross s2s links.
    pub peer_port: Option<u16>,
    pub peer_domain: Option<String>,
    pub user_prefix: String,
    pub password: String,
    /// Accounts are `<prefix><first_user>`, `<prefix><first_user + 1>`, …
    pub first_user: usize,
    pub server_pid: Option<u32>,
    pub include_children: bool,
    pub label: String,
    /// Free-form tag copied into every record (e.g. the run number).
    pub run: String,
    pub threads: usize,
    pub tls: TlsMode,
    /// How this run's clients connect (`transports` picks it per pass).
    pub transport: Transport,
    /// `--transport tcp,ws`: the scenario runs once per transport, in this
    /// order, and the WebSocket ÷ TCP ratios are printed at the end.
    pub transports: Vec<Transport>,
    /// The HTTP listener that serves XMPP over WebSocket.
    pub http_port: u16,
    /// The WebSocket endpoint's path.
    pub ws_path: String,
    /// The `Host` of the upgrade request; `--host:--http-port` if unset.
    pub ws_host: Option<String>,
    /// upload: the size of the file, in MiB.
    pub upload_mib: u64,
    /// upload: the service's JID; discovered (disco#items, disco#info) if unset.
    pub upload_service: Option<String>,
    /// upload: connect to this port of `--host` for the PUT and the GET,
    /// whatever port the URLs name (their host still goes in `Host`).
    pub upload_port: Option<u16>,
    pub mechanisms: Vec<Mechanism>,
    pub clients: usize,
    pub concurrency: usize,
    pub steps: Vec<usize>,
    pub pairs: usize,
    pub window: usize,
    pub seconds: f64,
    /// guess: clients from one address in the `parallel` mode.
    pub parallel: usize,
    /// guess: source addresses (one client each) in the `addresses` mode.
    pub sources: usize,
    /// guess: the modes to run, in this order.
    pub guess_modes: Vec<GuessMode>,
    pub latency_msgs: u64,
    /// offline: messages sent to the offline contact.
    pub messages: u64,
    pub max_msgs: u64,
    pub occupants: Vec<usize>,
    pub senders: usize,
    pub muc_window: usize,
    pub muc_latency_msgs: u64,
    pub join_timeout: f64,
    pub drain_seconds: f64,
    pub step_timeout: f64,
    /// Longest wait for the server's CPU to go quiet before a reading.
    pub settle_seconds: f64,
    /// Extra pause before reading idle memory.
    pub idle_pause: f64,
    /// Hard cap on any one phase.
    pub max_phase_seconds: f64,
    /// Print JSON lines on stdout and the table on stderr.
    pub print: bool,
    /// chat: stream management (XEP-0198) on every client.
    pub sm: bool,
    /// chat: messages per second all clients send together in the
    /// throughput phase (open loop, paced); `None` is the closed loop.
    pub rate: Option<u64>,
    /// mam: the options only it has.
    pub mam: crate::mam_settings::MamSettings,
    /// pep: the options only it has.
    pub pep: crate::pep_settings::PepSettings,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            scenario: Scenario::Login,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 5222,
            domain: "localhost".into(),
            muc_domain: String::new(),
            peer_port: None,
            peer_domain: None,
            user_prefix: "load".into(),
            password: "load-password".into(),
            first_user: 1,
            server_pid: None,
            include_children: false,
            label: "server".into(),
            run: String::new(),
            threads: 2,
            tls: TlsMode::None,
            transport: Transport::Tcp,
            transports: vec![Transport::Tcp],
            http_port: 5280,
            ws_path: crate::ws::DEFAULT_PATH.into(),
            ws_host: None,
            upload_mib: 100,
            upload_service: None,
            upload_port: None,
            mechanisms: vec![Mechanism::Plain],
            clients: 0,
            concurrency: 50,
            steps: vec![100, 1000, 10_000],
            pairs: 50,
            window: 10,
            seconds: 10.0,
            parallel: 32,
            sources: 50,
            guess_modes: GuessMode::ALL.to_vec(),
            latency_msgs: 500,
            messages: 1000,
            max_msgs: 10_000_000,
            occupants: vec![10, 100, 500, 1000],
            senders: 5,
            muc_window: 4,
            muc_latency_msgs: 100,
            join_timeout: 180.0,
            drain_seconds: 20.0,
            step_timeout: 30.0,
            settle_seconds: 15.0,
            idle_pause: 2.0,
            max_phase_seconds: 600.0,
            print: true,
            sm: false,
            rate: None,
            mam: crate::mam_settings::MamSettings::default(),
            pep: crate::pep_settings::PepSettings::default(),
        }
    }
}

impl Options {
    /// Default client count of a scenario when `--clients` is not given.
    pub fn clients_or_default(&self) -> usize {
        match (self.clients, self.scenario) {
            (0, Scenario::Churn) => 5000,
            (0, Scenario::Register) => 10_000,
            (0, _) => 500,
            (n, _) => n,
        }
    }

    pub fn muc_domain(&self) -> String {
        if self.muc_domain.is_empty() {
            format!("conference.{}", self.domain)
        } else {
            self.muc_domain.clone()
        }
    }

    pub fn step_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.step_timeout)
    }

    /// The WebSocket endpoint when this run's transport is `ws`.
    pub fn ws_endpoint(&self) -> Option<crate::ws::WsEndpoint> {
        (self.transport == Transport::Ws).then(|| crate::ws::WsEndpoint {
            host: self.ws_host.clone().unwrap_or_else(|| {
                std::net::SocketAddr::new(self.host, self.http_port).to_string()
            }),
            path: self.ws_path.clone(),
        })
    }

    pub fn user(&self, i: usize) -> String {
        format!("{}{}", self.user_prefix, self.first_user + i)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn bad(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, UsageError> {
    v.parse()
        .map_err(|_| bad(format!("--{name}: '{v}' is not a valid number")))
}

fn list(name: &str, v: &str) -> Result<Vec<usize>, UsageError> {
    let out: Vec<usize> = v
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| number(name, s))
        .collect::<Result<_, _>>()?;
    if out.is_empty() || out.contains(&0) {
        return Err(bad(format!(
            "--{name}: expected positive numbers, e.g. 10,100"
        )));
    }
    Ok(out)
}

fn positive(name: &str, v: f64) -> Result<f64, UsageError> {
    if v.is_finite() && (0.0..=86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err(bad(format!(
            "--{name}: {v} is out of range (0 to 86400 seconds)"
        )))
    }
}

pub const OPTIONS_HELP: &str = "\
Options (defaults in brackets):
  --host ADDR            server address, loopback only [127.0.0.1]
  --port N               c2s port; with --tls direct, the direct-TLS port [5222]
  --domain D             XMPP domain [localhost]
  --muc-domain D         MUC service [conference.<domain>]
  --peer-port N          federation: the second client of every pair logs
                         in to this c2s port of --host (another server), so
                         chat messages cross server-to-server links; run
                         once with each server's --server-pid for both
                         sides' CPU []
  --peer-domain D        that server's XMPP domain [required with
                         --peer-port]
  --user-prefix P        accounts are P1, P2, … [load]
  --password PW          password of every account [load-password]
  --first-user N         number of the first account [1]
  --server-pid PID       read the server's RSS and CPU from /proc/PID
  --include-children     sum /proc figures over PID's descendants (ejabberd)
  --label NAME           server name in the records [server]
  --run TAG              tag copied into every record (run number) []
  --threads N            OS threads driving the clients, 1 to 16 [2]
  --tls none|starttls|direct                            [none]
  --transport T[,T]      tcp (c2s), ws (XMPP over WebSocket, RFC 7395, at
                         ws://HOST:HTTP-PORT/xmpp-websocket, no TLS); tcp,ws
                         runs the scenario once over each and prints the
                         WebSocket / TCP ratios of KiB per idle connection
                         and server CPU per 1000 chat messages [tcp]
  --http-port N          the HTTP listener serving WebSocket [5280]
  --ws-path P            its WebSocket path [/xmpp-websocket]
  --ws-url URL           ws://HOST:PORT/PATH: sets --http-port, --ws-path and
                         the Host header (and --host if HOST is an IP
                         address, loopback only), and --transport ws unless
                         --transport is given
  --upload-mib N         upload: file size in MiB, 1 to 65536 [100]
  --upload-service JID   upload: the XEP-0363 service [found by disco#items
                         on --domain and disco#info of each item]
  --upload-port N        upload: PUT and GET to this port of --host instead
                         of the port the slot's URLs name [the URLs']
  --mech M[,M]           PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 [PLAIN]
  --clients N            login: logins per pass [500]; churn: clients [5000];
                         register: accounts [10000]
  --concurrency N        logins in flight [50]
  --steps N,N            idle: connected clients per reading [100,1000,10000]
  --pairs N              chat/churn: client pairs [50]
  --window N             chat: messages in flight per client [10]
  --sm                   chat: every client enables stream management
                         (XEP-0198) with resumption after binding, answers
                         the server's <r/> and sends its own every 5
                         stanzas; the records are chat_sm and chat_sm_latency
  --rate N               chat: the throughput phase sends N messages/s in
                         all, each of the 2 x pairs clients one every
                         2 x pairs / N s on a fixed schedule, not answering
                         what it receives; --window still caps each
                         client's messages in flight [closed loop]
  --seconds S            sending time of a throughput phase [10];
                         guess: time of each mode [60]
  --modes M[,M]          guess: interleaved, parallel, addresses [all three]
  --parallel N           guess: connections from one address [32]
  --sources N            guess: addresses 127.0.3.1…, 1 to 254 [50]
  --latency-msgs N       messages in the unloaded latency phases [500]
  --messages N           offline: messages to the offline contact [1000]
  --max-msgs N           cap on messages per sender per phase [10000000]
  --occupants N,N        muc: room sizes [10,100,500,1000]
  --senders N            muc: senders [5]
  --muc-window N         muc: fan-outs in flight per sender [4]
  --muc-latency-msgs N   muc: messages in the unloaded phase [100]
  --join-timeout S       muc: time allowed for all occupants to join [180]
  --drain-seconds S      wait for messages in flight after a phase [20]
  --step-timeout S       bound on each protocol step [30]
  --settle-seconds S     max wait for the server to go quiet [15]
  --idle-pause S         idle: pause before each memory reading [2]
  --max-phase-seconds S  hard cap on any one phase [600]
  --quiet                no JSON on stdout, no table on stderr";

/// Parses the options after the scenario name.
pub fn parse(scenario: Scenario, args: &[String]) -> Result<Options, UsageError> {
    let mut o = Options {
        scenario,
        ..Options::default()
    };
    let mut seconds_given = false;
    let mut transport_given = false;
    let mut ws_url: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let name = arg
            .strip_prefix("--")
            .ok_or_else(|| bad(format!("unexpected argument '{arg}'")))?;
        match name {
            "include-children" => {
                o.include_children = true;
                continue;
            }
            "quiet" => {
                o.print = false;
                continue;
            }
            "sm" => {
                o.sm = true;
                continue;
            }
            _ => {}
        }
        let v = it
            .next()
            .ok_or_else(|| bad(format!("--{name} needs a value")))?;
        if matches!(name, "transport" | "ws-url") {
            match name {
                "transport" => {
                    transport_given = true;
                    o.transports = v
                        .split(',')
                        .map(|t| {
                            Transport::parse(t).ok_or_else(|| {
                                bad(format!("--transport: '{t}' (expected tcp or ws)"))
                            })
                        })
                        .collect::<Result<_, _>>()?;
                    if o.transports.is_empty() {
                        return Err(bad("--transport: tcp, ws or tcp,ws"));
                    }
                }
                _ => {
                    ws_url = Some(v.clone());
                }
            }
            continue;
        }
        match name {
            // pep's own options first: its --rate is a list of publication
            // rates, not chat's.
            _ if scenario == Scenario::Pep && crate::pep_settings::NAMES.contains(&name) => {
                o.pep.set(name, v).map_err(bad)?
            }
            "host" => {
                let ip: IpAddr = v
                    .parse()
                    .map_err(|_| bad(format!("--host: '{v}' is not an IP address")))?;
                if !ip.is_loopback() {
                    return Err(bad(format!(
                        "--host: {ip} is not a loopback address; this tool only loads servers on this machine"
                    )));
                }
                o.host = ip;
            }
            "port" => o.port = number(name, v)?,
            "http-port" => o.http_port = number(name, v)?,
            "ws-path" => {
                if !v.starts_with('/') || v.contains([' ', '\r', '\n']) {
                    return Err(bad(format!("--ws-path: '{v}' is not a path")));
                }
                o.ws_path = v.clone();
            }
            "upload-mib" => {
                o.upload_mib = number(name, v)?;
                if !(1..=65_536).contains(&o.upload_mib) {
                    return Err(bad("--upload-mib: 1 to 65536"));
                }
            }
            "upload-service" => o.upload_service = Some(v.clone()),
            "upload-port" => o.upload_port = Some(number(name, v)?),
            "domain" => o.domain = v.clone(),
            "muc-domain" => o.muc_domain = v.clone(),
            "peer-port" => o.peer_port = Some(number(name, v)?),
            "peer-domain" => o.peer_domain = Some(v.clone()),
            "user-prefix" => o.user_prefix = v.clone(),
            "password" => o.password = v.clone(),
            "first-user" => o.first_user = number(name, v)?,
            "server-pid" => o.server_pid = Some(number(name, v)?),
            "label" => o.label = v.clone(),
            "run" => o.run = v.clone(),
            "threads" => {
                o.threads = number(name, v)?;
                if !(1..=16).contains(&o.threads) {
                    return Err(bad("--threads: 1 to 16"));
                }
            }
            "tls" => {
                o.tls = TlsMode::parse(v).ok_or_else(|| {
                    bad(format!("--tls: '{v}' (expected none, starttls or direct)"))
                })?
            }
            "mech" => {
                o.mechanisms = v
                    .split(',')
                    .map(|m| {
                        Mechanism::parse(m)
                            .ok_or_else(|| bad(format!("--mech: unknown mechanism '{m}'")))
                    })
                    .collect::<Result<_, _>>()?
            }
            "clients" => o.clients = number(name, v)?,
            "concurrency" => o.concurrency = number::<usize>(name, v)?.max(1),
            "steps" => o.steps = list(name, v)?,
            "pairs" => o.pairs = number::<usize>(name, v)?.max(1),
            "window" => o.window = number::<usize>(name, v)?.clamp(1, 10_000),
            "rate" => {
                let n: u64 = number(name, v)?;
                if !(1..=10_000_000).contains(&n) {
                    return Err(bad("--rate: 1 to 10000000 messages per second"));
                }
                o.rate = Some(n);
            }
            "seconds" => {
                o.seconds = positive(name, number(name, v)?)?;
                seconds_given = true;
            }
            "parallel" => {
                o.parallel = number(name, v)?;
                if !(1..=1000).contains(&o.parallel) {
                    return Err(bad("--parallel: 1 to 1000"));
                }
            }
            "sources" => {
                o.sources = number(name, v)?;
                // One /24 of loopback addresses: 127.0.3.1 to 127.0.3.254.
                if !(1..=254).contains(&o.sources) {
                    return Err(bad("--sources: 1 to 254"));
                }
            }
            "modes" => {
                o.guess_modes = v
                    .split(',')
                    .map(|m| {
                        GuessMode::parse(m).ok_or_else(|| {
                            bad(format!(
                                "--modes: unknown mode '{m}' (interleaved, parallel, addresses)"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            "latency-msgs" => o.latency_msgs = number(name, v)?,
            "messages" => {
                o.messages = number(name, v)?;
                // The recipient keeps one flag per message.
                if !(1..=10_000_000).contains(&o.messages) {
                    return Err(bad("--messages: 1 to 10000000"));
                }
            }
            "max-msgs" => o.max_msgs = number(name, v)?,
            "occupants" => o.occupants = list(name, v)?,
            "senders" => o.senders = number::<usize>(name, v)?.max(1),
            "muc-window" => o.muc_window = number::<usize>(name, v)?.clamp(1, 10_000),
            "muc-latency-msgs" => o.muc_latency_msgs = number(name, v)?,
            "join-timeout" => o.join_timeout = positive(name, number(name, v)?)?,
            "drain-seconds" => o.drain_seconds = positive(name, number(name, v)?)?,
            "step-timeout" => o.step_timeout = positive(name, number(name, v)?)?.max(0.1),
            "settle-seconds" => o.settle_seconds = positive(name, number(name, v)?)?,
            "idle-pause" => o.idle_pause = positive(name, number(name, v)?)?,
            "max-phase-seconds" => o.max_phase_seconds = positive(name, number(name, v)?)?,
            _ if scenario == Scenario::Mam && crate::mam_settings::NAMES.contains(&name) => {
                o.mam.set(name, v).map_err(bad)?
            }
            _ => return Err(bad(format!("unknown option --{name}"))),
        }
    }
    if let Some(url) = ws_url {
        let (host, port, path) =
            crate::ws::parse_url(&url).map_err(|e| bad(format!("--ws-url: {e}")))?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !ip.is_loopback() {
                return Err(bad(format!(
                    "--ws-url: {ip} is not a loopback address; this tool only loads servers on this machine"
                )));
            }
            o.host = ip;
        }
        o.http_port = port;
        o.ws_path = path;
        o.ws_host = Some(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        });
        if !transport_given {
            o.transports = vec![Transport::Ws];
        }
    }
    o.transports.dedup();
    o.transport = o.transports[0];
    if o.transports.contains(&Transport::Ws) && o.tls != TlsMode::None {
        return Err(bad(
            "--transport ws: XMPP over WebSocket runs without TLS here (ws://, loopback); leave out --tls",
        ));
    }
    if scenario == Scenario::Guess {
        // A throttle's waits grow to a minute: a shorter run shows the
        // first free guesses more than the steady rate.
        if !seconds_given {
            o.seconds = 60.0;
        }
        if !o.host.is_ipv4() {
            return Err(bad(
                "guess: --host must be an IPv4 loopback address (the clients connect from 127.0.N.x)",
            ));
        }
    }
    if o.sm && scenario != Scenario::Chat {
        return Err(bad(
            "--sm: only the chat scenario manages its streams (XEP-0198)",
        ));
    }
    if o.rate.is_some() && scenario != Scenario::Chat {
        return Err(bad("--rate: only the chat scenario paces its messages"));
    }
    if scenario == Scenario::Mam {
        o.mam.check().map_err(bad)?;
    }
    if scenario == Scenario::Pep {
        o.pep.check().map_err(bad)?;
    }
    if o.user_prefix.is_empty() || o.user_prefix.contains(['@', '/', ' ']) {
        return Err(bad(
            "--user-prefix: a non-empty localpart without @, / or spaces",
        ));
    }
    match (&o.peer_port, &o.peer_domain) {
        (Some(_), None) | (None, Some(_)) => {
            return Err(bad("--peer-port and --peer-domain go together"));
        }
        (Some(_), Some(_)) if scenario != Scenario::Chat || o.transport != Transport::Tcp => {
            return Err(bad(
                "--peer-port: only the chat scenario over tcp runs across two servers",
            ));
        }
        _ => {}
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_and_defaults() {
        let o = parse(
            Scenario::Muc,
            &args("--port 15222 --occupants 10,100 --mech PLAIN,scram-sha-256 --quiet"),
        )
        .expect("valid");
        assert_eq!(o.port, 15222);
        assert_eq!(o.occupants, vec![10, 100]);
        assert_eq!(o.mechanisms, vec![Mechanism::Plain, Mechanism::ScramSha256]);
        assert!(!o.print);
        assert_eq!(o.muc_domain(), "conference.localhost");
        assert_eq!(o.user(0), "load1");
        assert_eq!(o.clients_or_default(), 500);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        for bad_args in [
            "--host 10.0.0.1",
            "--host example.org",
            "--port",
            "--steps 0",
            "--threads 99",
            "--tls ssl",
            "--mech DIGEST-MD5",
            "--seconds -1",
            "--frobnicate 1",
            "--sources 255",
            "--parallel 0",
            "--modes serial",
            "--messages 0",
            "stray",
        ] {
            assert!(
                parse(Scenario::Login, &args(bad_args)).is_err(),
                "{bad_args}"
            );
        }
        assert!(parse(Scenario::Login, &args("--host ::1")).is_ok());
        assert!(parse(Scenario::Guess, &args("--host ::1")).is_err());
    }

    #[test]
    fn guess_runs_a_minute_per_mode_unless_told() {
        let o = parse(Scenario::Guess, &[]).expect("valid");
        assert_eq!(o.seconds, 60.0);
        assert_eq!((o.parallel, o.sources), (32, 50));
        assert_eq!(o.guess_modes, GuessMode::ALL.to_vec());
        let o = parse(
            Scenario::Guess,
            &args("--seconds 2 --modes parallel,interleaved"),
        )
        .expect("valid");
        assert_eq!(o.seconds, 2.0);
        assert_eq!(
            o.guess_modes,
            vec![GuessMode::Parallel, GuessMode::Interleaved]
        );
        assert_eq!(parse(Scenario::Chat, &[]).expect("valid").seconds, 10.0);
    }

    #[test]
    fn stream_management_is_for_chat_only() {
        assert!(!parse(Scenario::Chat, &[]).expect("valid").sm);
        assert!(parse(Scenario::Chat, &args("--sm")).expect("valid").sm);
        assert!(parse(Scenario::Muc, &args("--sm")).is_err());
        assert!(parse(Scenario::Idle, &args("--sm")).is_err());
    }

    #[test]
    fn mam_options_are_for_mam_only() {
        let o = parse(
            Scenario::Mam,
            &args("--sizes 10,20 --contacts 3 --room-senders 2 --write-senders 3 --port 1"),
        )
        .expect("valid");
        assert_eq!(
            (o.mam.sizes.clone(), o.mam.contacts, o.port),
            (vec![10, 20], 3, 1)
        );
        assert!(parse(Scenario::Chat, &args("--sizes 10")).is_err());
        assert!(
            parse(Scenario::Mam, &args("--contacts 3")).is_err(),
            "50 write senders"
        );
    }

    #[test]
    fn pep_options_are_for_pep_only() {
        let o = parse(
            Scenario::Pep,
            &args("--accounts 6 --contacts 4 --rate 5,50 --chat-pairs 3 --seconds 2 --port 1"),
        )
        .expect("valid");
        assert_eq!(
            (o.pep.accounts, o.pep.contacts, o.pep.rates.clone(), o.port),
            (6, 4, vec![5, 50], 1)
        );
        assert_eq!((o.rate, o.seconds), (None, 2.0));
        assert!(parse(Scenario::Chat, &args("--accounts 6")).is_err());
        assert!(
            parse(Scenario::Pep, &args("--accounts 6")).is_err(),
            "100 contacts of 6 accounts"
        );
        let o = parse(Scenario::Pep, &[]).expect("valid");
        assert_eq!((o.pep.accounts, o.pep.contacts), (1000, 100));
    }

    #[test]
    fn transports_and_websocket_endpoints() {
        let o = parse(Scenario::Chat, &[]).expect("valid");
        assert_eq!(
            (o.transport, o.transports.clone()),
            (Transport::Tcp, vec![Transport::Tcp])
        );
        assert_eq!(o.ws_endpoint(), None);
        let o = parse(Scenario::Idle, &args("--transport ws --http-port 15280")).expect("valid");
        assert_eq!(o.transport, Transport::Ws);
        let e = o.ws_endpoint().expect("ws");
        assert_eq!(
            (e.host.as_str(), e.path.as_str()),
            ("127.0.0.1:15280", "/xmpp-websocket")
        );
        let o = parse(Scenario::Chat, &args("--ws-url ws://[::1]:7/ws")).expect("valid");
        assert_eq!(
            (o.transport, o.http_port, o.host.to_string()),
            (Transport::Ws, 7, "::1".into())
        );
        assert_eq!(o.ws_endpoint().expect("ws").host, "[::1]:7");
        let o = parse(
            Scenario::Chat,
            &args("--ws-url ws://localhost:9/x --transport tcp,ws"),
        )
        .expect("valid");
        assert_eq!(o.transports, vec![Transport::Tcp, Transport::Ws]);
        assert_eq!(o.transport, Transport::Tcp);
        assert_eq!(
            (o.ws_host.as_deref(), o.ws_path.as_str()),
            (Some("localhost:9"), "/x")
        );
        for bad_args in [
            "--transport bosh",
            "--transport ws --tls direct",
            "--ws-url wss://127.0.0.1/x",
            "--ws-url ws://10.0.0.1/x",
            "--ws-path nope",
            "--upload-mib 0",
        ] {
            assert!(
                parse(Scenario::Chat, &args(bad_args)).is_err(),
                "{bad_args}"
            );
        }
        let o = parse(
            Scenario::Upload,
            &args("--upload-mib 3 --upload-service up.example --upload-port 1"),
        )
        .expect("valid");
        assert_eq!(
            (o.upload_mib, o.upload_service.as_deref(), o.upload_port),
            (3, Some("up.example"), Some(1))
        );
    }

    #[test]
    fn rate_is_for_chat_only() {
        assert_eq!(parse(Scenario::Chat, &[]).expect("valid").rate, None);
        let o = parse(Scenario::Chat, &args("--rate 50000 --sm")).expect("valid");
        assert_eq!((o.rate, o.sm), (Some(50_000), true));
        for bad_rate in ["--rate 0", "--rate -5", "--rate 1.5", "--rate x", "--rate"] {
            assert!(
                parse(Scenario::Chat, &args(bad_rate)).is_err(),
                "{bad_rate}"
            );
        }
        assert!(parse(Scenario::Churn, &args("--rate 100")).is_err());
        assert!(parse(Scenario::Muc, &args("--rate 100")).is_err());
    }
}

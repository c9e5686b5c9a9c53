//! `login-timing`: does the time a server takes to answer a login say
//! whether the account exists, or whether the password was right?
//!
//! Classes of attempts, `--attempts` (1 000) of each, interleaved (every
//! round makes one attempt of each class, in an order drawn anew), each on
//! a fresh connection from one of `--sources` loopback addresses, one at a
//! time so that no attempt waits behind another:
//!
//! - PLAIN with an unknown user; with a known user and a wrong password;
//!   with a known user and the right password;
//! - SCRAM-SHA-256's first message (the server answers with salt and
//!   iteration count) for an unknown user and for a known one: RFC 5802
//!   servers send made-up salts for unknown users, which must not be told
//!   apart by their timing either.
//!
//! The time is from writing `<auth/>` to reading the answer. A login
//! throttle's waits would swamp the figures, so a server the tool starts
//! itself gets `login_attempts_per_minute = 10000` (the most Perch allows:
//! this many failures per address and per account before anything waits,
//! more than a run makes); against a server of your own, raise it the same
//! way. Answers that are refusals (`temporary-auth-failure`) are counted
//! and left out.
//!
//! For each pair that matters the distributions are compared with the
//! Mann-Whitney U and Kolmogorov-Smirnov tests; a p-value below 0.001 in
//! either is a difference. Exit status 1 if an unknown user can be told
//! from a known one (right and wrong passwords are compared too, for the
//! record: the answer itself says which it was).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::base64;
use crate::conn::{ClientError, Conn, NS_SASL, Target, TlsMode, mechanisms, random_bytes};
use crate::ctx::round;
use crate::rng::Rng;
use crate::sasl::{self, Mechanism, ScramClient};
use crate::source::connect_from;
use crate::spawned::{PerchProcess, Settings, Source};
use crate::stats::{self, DistributionTest, RankTest, Summary};
use crate::xml;

/// A p-value below this in either test counts as a difference.
pub const ALPHA: f64 = 0.001;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    PlainUnknownUser,
    PlainWrongPassword,
    PlainRightPassword,
    ScramUnknownUser,
    ScramKnownUser,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::PlainUnknownUser,
        Class::PlainWrongPassword,
        Class::PlainRightPassword,
        Class::ScramUnknownUser,
        Class::ScramKnownUser,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::PlainUnknownUser => "plain-unknown-user",
            Class::PlainWrongPassword => "plain-wrong-password",
            Class::PlainRightPassword => "plain-right-password",
            Class::ScramUnknownUser => "scram-first-unknown-user",
            Class::ScramKnownUser => "scram-first-known-user",
        }
    }

    fn mechanism(self) -> Mechanism {
        match self {
            Class::PlainUnknownUser | Class::PlainWrongPassword | Class::PlainRightPassword => {
                Mechanism::Plain
            }
            Class::ScramUnknownUser | Class::ScramKnownUser => Mechanism::ScramSha256,
        }
    }

    /// The answer a server gives this class when nothing throttles it.
    fn expected(self) -> Answer {
        match self {
            Class::PlainUnknownUser | Class::PlainWrongPassword => Answer::NotAuthorized,
            Class::PlainRightPassword => Answer::Success,
            Class::ScramUnknownUser | Class::ScramKnownUser => Answer::Challenge,
        }
    }
}

/// The pairs compared: (a, b, whether a difference fails the run).
pub const COMPARISONS: [(Class, Class, bool); 3] = [
    (Class::PlainUnknownUser, Class::PlainWrongPassword, true),
    (Class::ScramUnknownUser, Class::ScramKnownUser, true),
    (Class::PlainWrongPassword, Class::PlainRightPassword, false),
];

#[derive(Debug, Clone)]
pub struct TimingOptions {
    /// Start this Perch binary with a configuration of the tool's making
    /// (or `config`); `None`: a server already runs at `addr`.
    pub perch: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub addr: SocketAddr,
    pub domain: String,
    pub user_prefix: String,
    pub password: String,
    /// Known accounts, `<prefix>1` … (the tool creates them when it starts
    /// the server; otherwise they must exist).
    pub accounts: usize,
    pub attempts: usize,
    /// Rounds made first and not counted (caches, the server's first
    /// key derivations, TCP).
    pub warmup: usize,
    pub classes: Vec<Class>,
    /// Source addresses 127.0.6.1 … .N.
    pub sources: u8,
    pub seed: u64,
    pub step_timeout: Duration,
    pub keep: bool,
    pub print: bool,
}

impl Default for TimingOptions {
    fn default() -> Self {
        TimingOptions {
            perch: None,
            config: None,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5222),
            domain: "localhost".into(),
            user_prefix: "timing".into(),
            password: "timing-password".into(),
            accounts: 8,
            attempts: 1000,
            warmup: 20,
            classes: Class::ALL.to_vec(),
            sources: 16,
            seed: 0,
            step_timeout: Duration::from_secs(10),
            keep: false,
            print: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Success,
    NotAuthorized,
    /// Any other `<failure>`: a throttle's refusal, usually.
    OtherFailure,
    Challenge,
}

fn classify(el: &[u8]) -> Option<Answer> {
    match xml::local_name(el) {
        b"success" => Some(Answer::Success),
        b"challenge" => Some(Answer::Challenge),
        b"failure" => {
            let checked = xml::find_seq(b"not-authorized", el, 0).is_some();
            Some(if checked {
                Answer::NotAuthorized
            } else {
                Answer::OtherFailure
            })
        }
        _ => None,
    }
}

/// One class's answer times (µs) and what did not count.
#[derive(Debug, Clone)]
pub struct ClassResult {
    pub class: Class,
    pub micros: Vec<f64>,
    pub refused: usize,
    pub unexpected: usize,
    pub errors: usize,
    pub error_samples: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub a: Class,
    pub b: Class,
    pub gates: bool,
    pub median_diff_us: f64,
    pub rank: RankTest,
    pub distribution: DistributionTest,
}

impl Comparison {
    pub fn differs(&self) -> bool {
        self.rank.p < ALPHA || self.distribution.p < ALPHA
    }
}

pub struct TimingReport {
    pub results: Vec<ClassResult>,
    pub comparisons: Vec<Comparison>,
}

impl TimingReport {
    /// A comparison that must not differ, and does.
    pub fn leaks(&self) -> Vec<&Comparison> {
        self.comparisons
            .iter()
            .filter(|c| c.gates && c.differs())
            .collect()
    }
}

/// Runs the measurement; `Err` only when it could not be made.
pub fn run(opts: &TimingOptions) -> Result<TimingReport, String> {
    let mut rng = Rng::new(opts.seed);
    smol::block_on(async {
        let mut server = None;
        let mut target = Target {
            addr: opts.addr,
            domain: opts.domain.clone(),
            tls: TlsMode::None,
            tls_config: None,
            step_timeout: opts.step_timeout,
            ws: None,
        };
        if let Some(binary) = &opts.perch {
            let source = Source::given_or(opts.config.as_ref(), opts.addr, None, Settings {
                    domain: opts.domain.clone(),
                    free_login_failures: Some(10_000),
                    log_level: "warn",
                    ..Settings::default()
                });
            let mut p = PerchProcess::prepare(binary, source, "timing", opts.keep, &mut rng)?;
            p.start().await?;
            let names: Vec<String> = (1..=opts.accounts)
                .map(|i| format!("{}{i}", opts.user_prefix))
                .collect();
            p.add_accounts(&names, &opts.password, 4).await?;
            target.addr = p.c2s;
            if opts.print {
                eprintln!(
                    "[perch-load] login-timing: perch pid {} on {} (login_attempts_per_minute = 10000)",
                    p.pid().unwrap_or(0),
                    p.c2s
                );
            }
            server = Some(p);
        }
        let results = measure(opts, &target, &mut rng).await;
        drop(server);
        results
    })
    .map(|results| {
        let comparisons = compare(&results);
        TimingReport {
            results,
            comparisons,
        }
    })
}

async fn measure(
    opts: &TimingOptions,
    target: &Target,
    rng: &mut Rng,
) -> Result<Vec<ClassResult>, String> {
    let mut results: Vec<ClassResult> = opts
        .classes
        .iter()
        .map(|&class| ClassResult {
            class,
            micros: Vec::with_capacity(opts.attempts),
            refused: 0,
            unexpected: 0,
            errors: 0,
            error_samples: Vec::new(),
        })
        .collect();
    let sources: Vec<IpAddr> = (1..=opts.sources.max(1))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 6, i)))
        .collect();
    let mut order: Vec<usize> = (0..results.len()).collect();
    let mut n = 0u64;
    let rounds = opts.warmup + opts.attempts;
    for round_no in 0..rounds {
        rng.shuffle(&mut order);
        for &k in &order {
            n += 1;
            let class = results[k].class;
            let known = format!(
                "{}{}",
                opts.user_prefix,
                1 + rng.index(opts.accounts.max(1))
            );
            // A new unknown name each time, as someone probing for accounts would.
            let unknown = format!("{}ghost{n}", opts.user_prefix);
            let (user, password) = match class {
                Class::PlainUnknownUser | Class::ScramUnknownUser => (unknown, "guess".to_string()),
                Class::PlainWrongPassword => (known, format!("{}x", opts.password)),
                Class::PlainRightPassword | Class::ScramKnownUser => (known, opts.password.clone()),
            };
            let source = sources[(n as usize) % sources.len()];
            let outcome = attempt(target, source, class.mechanism(), &user, &password).await;
            if round_no < opts.warmup {
                continue;
            }
            let r = &mut results[k];
            match outcome {
                Ok((answer, micros)) if answer == class.expected() => r.micros.push(micros),
                Ok((Answer::OtherFailure, _)) => r.refused += 1,
                Ok(_) => r.unexpected += 1,
                Err(e) => {
                    r.errors += 1;
                    if r.error_samples.len() < 3 {
                        r.error_samples.push(e.to_string());
                    }
                }
            }
        }
        if round_no == opts.warmup.saturating_sub(1) || round_no + 1 == rounds {
            let failed: usize = results.iter().map(|r| r.errors).sum();
            if failed > 0 && results.iter().all(|r| r.micros.is_empty()) {
                return Err(format!(
                    "no attempt succeeded; first errors: {:?}",
                    results
                        .iter()
                        .flat_map(|r| r.error_samples.iter())
                        .take(3)
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    Ok(results)
}

/// One `<auth/>` on a fresh connection: the answer and its time in µs.
async fn attempt(
    target: &Target,
    source: IpAddr,
    mech: Mechanism,
    user: &str,
    password: &str,
) -> Result<(Answer, f64), ClientError> {
    let tcp = connect_from(source, target.addr, target.step_timeout).await?;
    let (mut conn, features) = Conn::open_on(target, tcp).await?;
    let offered = mechanisms(&features);
    if !offered.iter().any(|m| m == mech.name()) {
        return Err(ClientError::NotOffered(mech.name().into(), offered));
    }
    let payload = match mech {
        Mechanism::Plain => sasl::plain_initial(user, password),
        _ => {
            let nonce = base64::encode(&random_bytes::<18>());
            ScramClient::new(mech, user, &nonce).first_message()
        }
    };
    let auth = format!(
        "<auth xmlns='{NS_SASL}' mechanism='{}'>{}</auth>",
        mech.name(),
        base64::encode(&payload)
    );
    let t0 = Instant::now();
    conn.send(auth.as_bytes()).await?;
    let el = crate::conn::timeout(target.step_timeout, "sasl answer", conn.next_element()).await?;
    let micros = t0.elapsed().as_secs_f64() * 1e6;
    // Dropped without ceremony: the socket closes with a reset.
    let answer = classify(&el).ok_or_else(|| {
        ClientError::Refused(
            "sasl",
            String::from_utf8_lossy(&el).chars().take(200).collect(),
        )
    })?;
    Ok((answer, micros))
}

fn compare(results: &[ClassResult]) -> Vec<Comparison> {
    let find = |c: Class| {
        results
            .iter()
            .find(|r| r.class == c && !r.micros.is_empty())
    };
    COMPARISONS
        .iter()
        .filter_map(|&(a, b, gates)| {
            let (ra, rb) = (find(a)?, find(b)?);
            let (sa, sb) = (stats::summary(&ra.micros)?, stats::summary(&rb.micros)?);
            Some(Comparison {
                a,
                b,
                gates,
                median_diff_us: sa.p50 - sb.p50,
                rank: stats::mann_whitney(&ra.micros, &rb.micros)?,
                distribution: stats::kolmogorov_smirnov(&ra.micros, &rb.micros)?,
            })
        })
        .collect()
}

fn summary_json(s: &Summary) -> serde_json::Value {
    json!({
        "n": s.n, "min_us": round(s.min, 1), "p10_us": round(s.p10, 1),
        "p50_us": round(s.p50, 1), "p90_us": round(s.p90, 1), "p99_us": round(s.p99, 1),
        "max_us": round(s.max, 1),
    })
}

/// One JSON line per class and per comparison.
pub fn records(report: &TimingReport, label: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for r in &report.results {
        let mut rec = json!({
            "scenario": "login_timing", "label": label, "class": r.class.name(),
            "refused": r.refused, "unexpected": r.unexpected, "errors": r.errors,
            "error_samples": r.error_samples,
        });
        if let Some(s) = stats::summary(&r.micros) {
            rec["answer"] = summary_json(&s);
        }
        out.push(rec);
    }
    for c in &report.comparisons {
        out.push(json!({
            "scenario": "login_timing_comparison", "label": label,
            "a": c.a.name(), "b": c.b.name(),
            "median_diff_us": round(c.median_diff_us, 1),
            "mann_whitney_u": c.rank.u, "mann_whitney_z": round(c.rank.z, 3),
            "mann_whitney_p": c.rank.p, "a_exceeds_b": round(c.rank.a_exceeds_b, 4),
            "ks_d": round(c.distribution.d, 4), "ks_p": c.distribution.p,
            "differs": c.differs(), "must_not_differ": c.gates,
        }));
    }
    out
}

/// The human-readable table.
pub fn table(report: &TimingReport) -> String {
    let mut out = String::from(
        "answer time (µs)             n      min      p10      p50      p90      p99      max  refused errors\n",
    );
    for r in &report.results {
        match stats::summary(&r.micros) {
            Some(s) => out.push_str(&format!(
                "{:<26} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8} {:>6}\n",
                r.class.name(),
                s.n,
                s.min,
                s.p10,
                s.p50,
                s.p90,
                s.p99,
                s.max,
                r.refused,
                r.errors
            )),
            None => out.push_str(&format!(
                "{:<26}     0 (refused {}, unexpected {}, errors {}: {:?})\n",
                r.class.name(),
                r.refused,
                r.unexpected,
                r.errors,
                r.error_samples
            )),
        }
    }
    out.push_str(&format!(
        "\n{:<52} {:>9} {:>8} {:>9} {:>6} {:>9}  verdict (p < {ALPHA} in either test: different)\n",
        "comparison (a vs b)", "Δp50 µs", "MWU z", "MWU p", "KS D", "KS p"
    ));
    for c in &report.comparisons {
        let verdict = match (c.differs(), c.gates) {
            (false, _) => "indistinguishable",
            (true, true) => "DIFFERENT: the timing tells them apart",
            (true, false) => "different (the answer itself tells them apart)",
        };
        out.push_str(&format!(
            "{:<52} {:>9.1} {:>8.2} {:>9.2e} {:>6.3} {:>9.2e}  {verdict}\n",
            format!("{} vs {}", c.a.name(), c.b.name()),
            c.median_diff_us,
            c.rank.z,
            c.rank.p,
            c.distribution.d,
            c.distribution.p,
        ));
    }
    out
}

pub const LOGIN_TIMING_HELP: &str = "\
login-timing options (defaults in brackets):
  --perch PATH           start this Perch binary with a generated configuration
                         (login_attempts_per_minute = 10000); without it, measure
                         the server at --host/--port, whose accounts <prefix>1…
                         must exist and whose login throttle must be raised
  --config FILE          with --perch: this configuration instead
  --attempts N           attempts of each class [1000]
  --warmup N             rounds made first and not counted [20]
  --accounts N           known accounts <prefix>1… [8]
  --sources N            source addresses 127.0.6.1… [16]
  --mech M[,M]           PLAIN, SCRAM-SHA-256 [both]
  --user-prefix P        [timing]   --password PW [timing-password]
  --seed N               order of the classes in each round [from the clock]
  --step-timeout S       bound on each answer [10]
  --keep                 keep the work directory";

impl TimingOptions {
    pub fn from_args(args: &[String]) -> Result<TimingOptions, String> {
        let a = crate::args::Args::parse(
            args,
            &[
                "perch",
                "config",
                "host",
                "port",
                "domain",
                "attempts",
                "warmup",
                "accounts",
                "sources",
                "mech",
                "user-prefix",
                "password",
                "seed",
                "step-timeout",
            ],
            &["keep", "quiet"],
        )?;
        let mut classes = Vec::new();
        for m in a.value("mech").unwrap_or("PLAIN,SCRAM-SHA-256").split(',') {
            match Mechanism::parse(m) {
                Some(Mechanism::Plain) => classes.extend(&Class::ALL[..3]),
                Some(Mechanism::ScramSha256) => classes.extend(&Class::ALL[3..]),
                _ => return Err(format!("--mech: '{m}' (PLAIN or SCRAM-SHA-256)")),
            }
        }
        Ok(TimingOptions {
            perch: a.value("perch").map(PathBuf::from),
            config: a.value("config").map(PathBuf::from),
            addr: a.loopback(5222)?,
            domain: a.value("domain").unwrap_or("localhost").to_string(),
            user_prefix: a.value("user-prefix").unwrap_or("timing").to_string(),
            password: a.value("password").unwrap_or("timing-password").to_string(),
            accounts: a.bounded("accounts", 8, 1..=1000)?,
            attempts: a.bounded("attempts", 1000, 2..=1_000_000)?,
            warmup: a.bounded("warmup", 20, 0..=100_000)?,
            classes,
            sources: a.bounded("sources", 16, 1..=254)?,
            seed: match a.value("seed") {
                Some(_) => a.number("seed", 0)?,
                None => crate::rng::seed_from_clock(),
            },
            step_timeout: Duration::from_secs_f64(a.seconds("step-timeout", 10.0)?.max(0.1)),
            keep: a.flag("keep"),
            print: !a.flag("quiet"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
            Some(Answer::Success)
        );
        assert_eq!(
            classify(b"<failure xmlns='x'><not-authorized/></failure>"),
            Some(Answer::NotAuthorized)
        );
        assert_eq!(
            classify(b"<failure xmlns='x'><temporary-auth-failure/></failure>"),
            Some(Answer::OtherFailure)
        );
        assert_eq!(
            classify(b"<challenge xmlns='x'>abc=</challenge>"),
            Some(Answer::Challenge)
        );
        assert_eq!(classify(b"<iq/>"), None);
    }

    #[test]
    fn comparisons_follow_the_samples() {
        let result = |class, micros: Vec<f64>| ClassResult {
            class,
            micros,
            refused: 0,
            unexpected: 0,
            errors: 0,
            error_samples: Vec::new(),
        };
        let base: Vec<f64> = (0..500)
            .map(|i| 1000.0 + f64::from((i * 37) % 100))
            .collect();
        let fast: Vec<f64> = base.iter().map(|x| x - 900.0).collect();
        let report = TimingReport {
            comparisons: Vec::new(),
            results: vec![
                result(Class::PlainUnknownUser, fast),
                result(Class::PlainWrongPassword, base.clone()),
                result(
                    Class::PlainRightPassword,
                    base.iter().rev().copied().collect(),
                ),
            ],
        };
        let comparisons = compare(&report.results);
        assert_eq!(comparisons.len(), 2, "no SCRAM samples: one pair fewer");
        assert!(comparisons[0].differs() && comparisons[0].gates);
        assert!(!comparisons[1].differs());
        let report = TimingReport {
            comparisons,
            ..report
        };
        assert_eq!(report.leaks().len(), 1);
        assert!(table(&report).contains("DIFFERENT"));
        assert_eq!(records(&report, "x").len(), 5);
    }
}

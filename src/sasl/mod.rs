//! Server-side SASL (RFC 6120 §6) without I/O: the stream layer decodes the
//! base64 payloads of `<auth/>` and `<response/>`, feeds them to
//! [`SaslSession::step`] and turns the returned [`Step`] into
//! `<challenge/>`, `<success/>` or `<failure/>`.
//!
//! Mechanisms: PLAIN (RFC 4616) and SCRAM-SHA-1/-SHA-256 with and without
//! `-PLUS` (RFC 5802, RFC 7677), channel binding type `tls-exporter`
//! (RFC 9266).

pub mod base64;
pub mod client;
mod credentials;
pub mod fast;
pub(crate) use credentials::ct_eq;
mod plain;
mod scram;
pub mod ssdp;

use std::fmt;

pub use credentials::{
    Credentials, DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS, SALT_LEN, ScramHash, ScramKeys,
};
pub use scram::init_fake_salt_secret;

/// What is wrong with `password` as a password to store, if anything: the
/// rule for every password set on this server (by the administrator or by
/// a client in-band): not empty, at most 1 024 bytes, no line break or NUL
/// (which no login could send back).
pub fn password_problem(password: &str) -> Option<&'static str> {
    if password.is_empty() {
        Some("it is empty")
    } else if password.len() > 1024 {
        Some("longer than 1024 bytes")
    } else if password.contains(['\n', '\r', '\0']) {
        Some("it contains a line break or NUL")
    } else {
        None
    }
}

/// Largest decoded client message accepted; real ones are well below 1 KiB.
pub const MAX_INPUT_LEN: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    ScramSha1,
    ScramSha1Plus,
    ScramSha256,
    ScramSha256Plus,
}

impl Mechanism {
    /// In order of preference, strongest first.
    pub const ALL: [Mechanism; 5] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
        }
    }

    /// Exact match: RFC 4422 §3.1 names are upper case.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn is_plus(self) -> bool {
        matches!(self, Mechanism::ScramSha1Plus | Mechanism::ScramSha256Plus)
    }

    /// The SCRAM hash, or `None` for PLAIN.
    pub fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Mechanism::Plain => None,
            Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => Some(ScramHash::Sha1),
            Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => Some(ScramHash::Sha256),
        }
    }

    /// What to list in `<mechanisms/>`: `-PLUS` only when channel binding
    /// data is available, PLAIN only when the caller allows it (typically:
    /// on an encrypted stream).
    pub fn advertised(channel_binding: bool, allow_plain: bool) -> impl Iterator<Item = Mechanism> {
        Mechanism::ALL.into_iter().filter(move |m| {
            (channel_binding || !m.is_plus()) && (allow_plain || *m != Mechanism::Plain)
        })
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Channel binding data computed by the TLS layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelBinding {
    /// The cb-name, e.g. [`ChannelBinding::TLS_EXPORTER`].
    pub kind: &'static str,
    pub data: Vec<u8>,
}

impl ChannelBinding {
    pub const TLS_EXPORTER: &'static str = "tls-exporter";

    /// RFC 9266: 32 bytes exported with label "EXPORTER-Channel-Binding"
    /// and no context.
    pub fn tls_exporter(data: Vec<u8>) -> ChannelBinding {
        ChannelBinding {
            kind: ChannelBinding::TLS_EXPORTER,
            data,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send `<challenge/>` with this payload (base64-encode it; an empty
    /// payload is sent as "=").
    Challenge(Vec<u8>),
    /// Authenticated as `username` (the prepared localpart; join it with
    /// the stream's domain). `additional_data` goes into `<success/>`: the
    /// server-final message for SCRAM, empty for PLAIN.
    Success {
        username: String,
        additional_data: Vec<u8>,
    },
    Failure(SaslFailure),
}

/// The `<failure/>` conditions of RFC 6120 §6.5.
///
/// [`SaslSession`] itself only yields `NotAuthorized`, `MalformedRequest`,
/// `InvalidAuthzid`, `InvalidMechanism`, `Aborted` and
/// `TemporaryAuthFailure`; the others express the caller's policy (PLAIN
/// without TLS, bad base64, disabled accounts, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaslFailure {
    NotAuthorized,
    MalformedRequest,
    InvalidAuthzid,
    InvalidMechanism,
    EncryptionRequired,
    IncorrectEncoding,
    Aborted,
    TemporaryAuthFailure,
    AccountDisabled,
    CredentialsExpired,
    MechanismTooWeak,
}

impl SaslFailure {
    /// The child element name of `<failure/>`.
    pub fn condition(&self) -> &'static str {
        match self {
            SaslFailure::NotAuthorized => "not-authorized",
            SaslFailure::MalformedRequest => "malformed-request",
            SaslFailure::InvalidAuthzid => "invalid-authzid",
            SaslFailure::InvalidMechanism => "invalid-mechanism",
            SaslFailure::EncryptionRequired => "encryption-required",
            SaslFailure::IncorrectEncoding => "incorrect-encoding",
            SaslFailure::Aborted => "aborted",
            SaslFailure::TemporaryAuthFailure => "temporary-auth-failure",
            SaslFailure::AccountDisabled => "account-disabled",
            SaslFailure::CredentialsExpired => "credentials-expired",
            SaslFailure::MechanismTooWeak => "mechanism-too-weak",
        }
    }
}

impl fmt::Display for SaslFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.condition())
    }
}

/// Access to the accounts of one virtual host. Usernames passed in are
/// already prepared localparts (Nodeprep).
pub trait CredentialLookup {
    /// Stored keys, or `None` if the account does not exist (or has no
    /// keys for this hash).
    fn scram_keys(&self, username: &str, hash: ScramHash) -> Option<ScramKeys>;

    /// Checks a PLAIN password (passed as received: SASLprep is applied in
    /// [`ScramKeys::verify_password`]). The provided check runs one PBKDF2
    /// against the account's strongest keys, or against made-up keys for
    /// an unknown user, so that the time to the answer does not tell
    /// whether the account exists; an implementation of its own must do
    /// the same.
    fn check_plain(&self, username: &str, password: &str) -> bool {
        plain::check_evenly(self, username, password)
    }

    /// Iteration count announced for unknown users; should match what real
    /// accounts use so that fake challenges look the same.
    fn default_iterations(&self) -> u32 {
        DEFAULT_ITERATIONS
    }

    /// The virtual host these accounts belong to. An authzid is accepted
    /// only if it is the authenticating user's bare JID on this host; with
    /// `None` only its localpart can be compared (harmless, since the
    /// session never grants any identity but the authcid's).
    fn domain(&self) -> Option<&str> {
        None
    }
}

/// Errors outside the server exchange: deriving and decoding credentials,
/// and the client side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslError {
    EmptyPassword,
    /// The password contains characters SASLprep prohibits.
    PasswordNotSaslprep,
    /// The username is empty or contains characters SASLprep prohibits.
    InvalidUsername,
    IterationsOutOfRange(u32),
    InvalidSalt,
    RandomFailure,
    UnsupportedCredentialsVersion(u8),
    CorruptCredentials(&'static str),
    MalformedServerMessage(&'static str),
    /// The server nonce does not extend ours.
    NonceMismatch,
    /// The server answered with `e=`.
    ServerError(String),
    /// A client method was called out of order.
    InvalidState,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslError::EmptyPassword => f.write_str("the password is empty"),
            SaslError::PasswordNotSaslprep => {
                f.write_str("the password contains characters that are not allowed (SASLprep)")
            }
            SaslError::InvalidUsername => f.write_str(
                "the username is empty or contains characters that are not allowed (SASLprep)",
            ),
            SaslError::IterationsOutOfRange(n) => write!(
                f,
                "iteration count {n} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS} (1..= for stored keys)"
            ),
            SaslError::InvalidSalt => f.write_str("the salt must be 1 to 255 bytes long"),
            SaslError::RandomFailure => f.write_str("the system random number generator failed"),
            SaslError::UnsupportedCredentialsVersion(v) => {
                write!(f, "stored credentials have unknown format version {v}")
            }
            SaslError::CorruptCredentials(why) => {
                write!(f, "stored credentials are corrupt: {why}")
            }
            SaslError::MalformedServerMessage(why) => {
                write!(f, "malformed SCRAM server message: {why}")
            }
            SaslError::NonceMismatch => {
                f.write_str("the server nonce does not extend the client nonce")
            }
            SaslError::ServerError(e) => write!(f, "the server reported a SCRAM error: {e}"),
            SaslError::InvalidState => f.write_str("SCRAM client steps called out of order"),
        }
    }
}

impl std::error::Error for SaslError {}

/// A failure plus a reason for the server log; the reason is never sent to
/// the client, so it may say "unknown user".
type Fail = (SaslFailure, &'static str);

enum Inner {
    Plain(plain::Plain),
    Scram(Box<scram::ScramServer>),
    /// A -PLUS mechanism was started without channel binding data.
    Unavailable,
    Done,
}

/// One authentication exchange on one stream.
pub struct SaslSession {
    mechanism: Mechanism,
    inner: Inner,
    detail: Option<&'static str>,
}

impl SaslSession {
    /// `channel_binding` is the data for this TLS connection, if any (needed
    /// for `-PLUS`); `plus_offered` says whether `-PLUS` mechanisms were
    /// advertised, which makes a client's "y" flag a sign of a downgrade.
    /// The host an authzid must name comes from
    /// [`CredentialLookup::domain`].
    pub fn start(
        mechanism: Mechanism,
        channel_binding: Option<ChannelBinding>,
        plus_offered: bool,
    ) -> SaslSession {
        let inner = match mechanism.scram_hash() {
            None => Inner::Plain(plain::Plain::new()),
            Some(_) if mechanism.is_plus() && channel_binding.is_none() => Inner::Unavailable,
            Some(hash) => Inner::Scram(Box::new(scram::ScramServer::new(
                hash,
                mechanism.is_plus(),
                channel_binding,
                plus_offered,
            ))),
        };
        SaslSession {
            mechanism,
            inner,
            detail: None,
        }
    }

    /// Fixes the server nonce part instead of drawing it at random; only
    /// for reproducing test vectors.
    #[doc(hidden)]
    pub fn with_server_nonce(mut self, nonce: &str) -> SaslSession {
        if let Inner::Scram(s) = &mut self.inner {
            s.set_nonce(nonce);
        }
        self
    }

    /// Feeds one client message (already base64-decoded). The first call
    /// gets the initial response; if the client sent none (or an empty
    /// one), an empty challenge asks for it.
    pub fn step(&mut self, input: &[u8], creds: &dyn CredentialLookup) -> Step {
        let result = if input.len() > MAX_INPUT_LEN {
            Err((SaslFailure::MalformedRequest, "message too long"))
        } else {
            match &mut self.inner {
                Inner::Plain(p) => p.step(input, creds),
                Inner::Scram(s) => s.step(input, creds),
                Inner::Unavailable => Err((
                    SaslFailure::InvalidMechanism,
                    "-PLUS mechanism without channel binding data",
                )),
                Inner::Done => Err((SaslFailure::MalformedRequest, "exchange already finished")),
            }
        };
        match result {
            Ok(step @ Step::Challenge(_)) => step,
            Ok(step) => {
                self.inner = Inner::Done;
                step
            }
            Err((failure, detail)) => {
                self.inner = Inner::Done;
                self.detail = Some(detail);
                Step::Failure(failure)
            }
        }
    }

    /// Adds XEP-0474 downgrade protection to a SCRAM exchange: its
    /// server-first message carries the hash of what the stream
    /// advertised (see [`ssdp`]). Nothing changes for PLAIN.
    pub fn with_downgrade_protection(
        mut self,
        advertised: &[Mechanism],
        cb_types: &[&str],
    ) -> SaslSession {
        if let (Inner::Scram(s), Some(hash)) = (&mut self.inner, self.mechanism.scram_hash()) {
            s.set_ssdp(ssdp::hash(hash, advertised, cb_types));
        }
        self
    }

    /// The username whose password the step fed with `input` would check,
    /// if it checks one: PLAIN's authcid, or SCRAM's username once the
    /// client's proof is due. It is the prepared localpart when it is valid
    /// (an unknown user's attempts count like a known one's), `None` for
    /// steps that check nothing (a challenge, a malformed message).
    pub fn account_at_stake(&self, input: &[u8]) -> Option<String> {
        if input.len() > MAX_INPUT_LEN {
            return None;
        }
        match &self.inner {
            Inner::Plain(_) => plain::authcid(input),
            Inner::Scram(s) => s.username_at_stake().map(str::to_owned),
            Inner::Unavailable | Inner::Done => None,
        }
    }

    /// The client sent `<abort/>`.
    pub fn abort(&mut self) -> Step {
        self.inner = Inner::Done;
        self.detail = Some("aborted by client");
        Step::Failure(SaslFailure::Aborted)
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.inner, Inner::Done)
    }

    /// Why the exchange failed, for the server log only.
    pub fn failure_detail(&self) -> Option<&'static str> {
        self.detail
    }
}

impl fmt::Debug for SaslSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys and nonces stay out of logs.
        f.debug_struct("SaslSession")
            .field("mechanism", &self.mechanism)
            .field("finished", &self.is_finished())
            .field("detail", &self.detail)
            .finish_non_exhaustive()
    }
}

/// Checks an optional authzid: RFC 6120 §6.3.8 lets a client name the
/// identity to act as; we only accept the user's own bare JID.
fn check_authzid(
    authzid: &str,
    username: Option<&str>,
    creds: &dyn CredentialLookup,
) -> Result<(), Fail> {
    if authzid.is_empty() {
        return Ok(());
    }
    let bad = (
        SaslFailure::InvalidAuthzid,
        "authzid is not the user's bare JID",
    );
    let jid = crate::jid::Jid::parse(authzid).map_err(|_| bad)?;
    let same_user = jid.is_bare() && jid.local().is_some() && jid.local() == username;
    let same_host = match creds.domain().map(crate::jid::prep_domain) {
        None => true,
        Some(Ok(domain)) => jid.domain() == domain,
        Some(Err(_)) => false,
    };
    if same_user && same_host {
        Ok(())
    } else {
        Err(bad)
    }
}

#[cfg(test)]
mod tests;

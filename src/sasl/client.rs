//! A minimal SCRAM client, for integration tests and load generators.
//!
//! ```text
//! let mut c = ScramClient::new(ScramHash::Sha256, "juliet", "secret", None)?;
//! send_auth(c.mechanism().name(), &c.first());
//! let reply = c.final_(&receive_challenge())?;
//! send_response(&reply);
//! assert!(c.verify(&receive_success()));
//! ```

use super::credentials::{
    client_key, ct_eq, h, hmac, iterations, prep_password, random_bytes, salted_password,
    server_key, xor,
};
use super::scram::{encode_saslname, is_valid_nonce};
use super::{ChannelBinding, Mechanism, SaslError, ScramHash, base64};

const CLIENT_NONCE_LEN: usize = 18;

enum State {
    Initial,
    AwaitServerFinal { server_signature: Vec<u8> },
}

pub struct ScramClient {
    hash: ScramHash,
    cb: Option<ChannelBinding>,
    username: String,
    authzid: Option<String>,
    password: String,
    nonce: String,
    state: State,
}

impl ScramClient {
    /// With `cb`, the client uses the `-PLUS` mechanism and binds to it.
    pub fn new(
        hash: ScramHash,
        username: &str,
        password: &str,
        cb: Option<ChannelBinding>,
    ) -> Result<ScramClient, SaslError> {
        let username = stringprep::saslprep(username).map_err(|_| SaslError::InvalidUsername)?;
        if username.is_empty() {
            return Err(SaslError::InvalidUsername);
        }
        let password = prep_password(password)?.into_owned();
        let nonce = base64::encode(&random_bytes(CLIENT_NONCE_LEN)?);
        Ok(ScramClient {
            hash,
            cb,
            username: encode_saslname(&username),
            authzid: None,
            password,
            nonce,
            state: State::Initial,
        })
    }

    /// Asks to act as `authzid` (sent as `a=`); call before [`first`](Self::first).
    pub fn with_authzid(mut self, authzid: &str) -> ScramClient {
        self.authzid = Some(encode_saslname(authzid));
        self
    }

    /// Replaces the random client nonce; only for reproducing test vectors.
    #[doc(hidden)]
    pub fn with_nonce(mut self, nonce: &str) -> ScramClient {
        self.nonce = nonce.to_owned();
        self
    }

    pub fn mechanism(&self) -> Mechanism {
        match (self.hash, self.cb.is_some()) {
            (ScramHash::Sha1, false) => Mechanism::ScramSha1,
            (ScramHash::Sha1, true) => Mechanism::ScramSha1Plus,
            (ScramHash::Sha256, false) => Mechanism::ScramSha256,
            (ScramHash::Sha256, true) => Mechanism::ScramSha256Plus,
        }
    }

    fn gs2_header(&self) -> String {
        let flag = match &self.cb {
            Some(cb) => format!("p={}", cb.kind),
            None => "n".to_owned(),
        };
        let authzid = self
            .authzid
            .as_ref()
            .map(|a| format!("a={a}"))
            .unwrap_or_default();
        format!("{flag},{authzid},")
    }

    fn first_bare(&self) -> String {
        format!("n={},r={}", self.username, self.nonce)
    }

    /// The client-first message (the initial response).
    pub fn first(&self) -> Vec<u8> {
        format!("{}{}", self.gs2_header(), self.first_bare()).into_bytes()
    }

    /// Takes the server-first message, returns the client-final message.
    pub fn final_(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        if !matches!(self.state, State::Initial) {
            return Err(SaslError::InvalidState);
        }
        let bad = SaslError::MalformedServerMessage;
        let msg = std::str::from_utf8(server_first).map_err(|_| bad("not UTF-8"))?;
        if let Some(e) = msg.strip_prefix("e=") {
            return Err(SaslError::ServerError(e.to_owned()));
        }
        let mut fields = msg.split(',');
        let mut attr = |name: &str, what: &'static str| {
            fields
                .next()
                .and_then(|f| f.strip_prefix(name))
                .ok_or(bad(what))
        };
        let nonce = attr("r=", "expected r= first")?;
        let salt = attr("s=", "expected s= second")?;
        let rounds = attr("i=", "expected i= third")?;
        if !is_valid_nonce(nonce) {
            return Err(bad("invalid nonce"));
        }
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err(SaslError::NonceMismatch);
        }
        let salt = base64::decode(salt)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or(bad("invalid salt"))?;
        let rounds: u32 = rounds.parse().map_err(|_| bad("invalid iteration count"))?;
        let rounds = iterations(rounds)?;

        let mut cbind = self.gs2_header().into_bytes();
        if let Some(cb) = &self.cb {
            cbind.extend_from_slice(&cb.data);
        }
        let without_proof = format!("c={},r={nonce}", base64::encode(&cbind));
        let auth_message = format!("{},{msg},{without_proof}", self.first_bare());

        let salted = salted_password(self.hash, &self.password, &salt, rounds);
        let client = client_key(self.hash, &salted);
        let stored = h(self.hash, &client);
        let proof = xor(&client, &hmac(self.hash, &stored, auth_message.as_bytes()));
        let server_signature = hmac(
            self.hash,
            &server_key(self.hash, &salted),
            auth_message.as_bytes(),
        );
        self.state = State::AwaitServerFinal { server_signature };
        Ok(format!("{without_proof},p={}", base64::encode(&proof)).into_bytes())
    }

    /// Checks the server-final message (the `<success/>` data); `false`
    /// means the server does not know our password and must not be trusted.
    pub fn verify(&self, server_final: &[u8]) -> bool {
        let State::AwaitServerFinal { server_signature } = &self.state else {
            return false;
        };
        let Ok(msg) = std::str::from_utf8(server_final) else {
            return false;
        };
        let first = msg.split(',').next().unwrap_or_default();
        match first.strip_prefix("v=").map(base64::decode) {
            Some(Ok(v)) => ct_eq(&v, server_signature),
            _ => false,
        }
    }
}

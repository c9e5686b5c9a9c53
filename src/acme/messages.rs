//! The ACME server's JSON documents (RFC 8555 §7.1), read into typed
//! structs. Everything here comes from the network: sizes and counts are
//! bounded, URLs must be `https`,
//! tokens must be base64url, and anything unexpected is a [`AcmeError`]
//! naming the document, never a panic.

use serde_json::Value;

use super::AcmeError;
use super::jws::is_base64url;

/// Longest JSON document read (a directory, order or authorization).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Longest URL or other string kept from a document.
const MAX_STRING: usize = 2048;
/// Authorizations in one order: Let's Encrypt allows 100 names.
const MAX_AUTHORIZATIONS: usize = 100;
/// Challenges offered in one authorization.
const MAX_CHALLENGES: usize = 16;

/// The directory's endpoints (§7.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    pub new_nonce: String,
    pub new_account: String,
    pub new_order: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Ready,
    Processing,
    Valid,
    Invalid,
    /// `expired`, `deactivated`, `revoked`: over, and not valid.
    Ended,
}

/// An order (§7.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub status: Status,
    pub authorizations: Vec<String>,
    pub finalize: String,
    pub certificate: Option<String>,
    pub error: Option<Problem>,
}

/// An authorization (§7.1.4), with the one challenge Perch can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub status: Status,
    pub identifier: String,
    /// The `http-01` challenge, if offered.
    pub http01: Option<Challenge>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub url: String,
    pub token: String,
    pub status: Status,
    pub error: Option<Problem>,
}

/// A problem document (RFC 7807, §6.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The type without the `urn:ietf:params:acme:error:` prefix.
    pub kind: String,
    pub detail: String,
}

impl Problem {
    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}: {}", self.kind, self.detail)
        }
    }
}

const ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";

fn document(what: &'static str, body: &[u8]) -> Result<Value, AcmeError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(malformed(
            what,
            format!("longer than {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|err| malformed(what, format!("not JSON: {err}")))?;
    if !value.is_object() {
        return Err(malformed(what, "not a JSON object".to_owned()));
    }
    Ok(value)
}

fn malformed(what: &'static str, detail: String) -> AcmeError {
    AcmeError::Malformed { what, detail }
}

fn string<'v>(what: &'static str, value: &'v Value, key: &str) -> Result<&'v str, AcmeError> {
    match value.get(key).and_then(Value::as_str) {
        Some(text) if text.len() <= MAX_STRING => Ok(text),
        Some(_) => Err(malformed(what, format!("\"{key}\" is too long"))),
        None => Err(malformed(
            what,
            format!("\"{key}\" is missing or not a string"),
        )),
    }
}

fn url(what: &'static str, value: &Value, key: &str) -> Result<String, AcmeError> {
    let text = string(what, value, key)?;
    if super::wire::Url::parse(text).is_none() {
        return Err(malformed(
            what,
            format!("\"{key}\" is not an https URL: {text:?}"),
        ));
    }
    Ok(text.to_owned())
}

fn status(what: &'static str, value: &Value) -> Result<Status, AcmeError> {
    Ok(match string(what, value, "status")? {
        "pending" => Status::Pending,
        "ready" => Status::Ready,
        "processing" => Status::Processing,
        "valid" => Status::Valid,
        "invalid" => Status::Invalid,
        "expired" | "deactivated" | "revoked" => Status::Ended,
        other => return Err(malformed(what, format!("unknown status {other:?}"))),
    })
}

fn problem_in(value: &Value) -> Option<Problem> {
    value.get("error").filter(|e| e.is_object()).map(problem_of)
}

fn problem_of(value: &Value) -> Problem {
    let text = |key: &str| -> String {
        let text = value.get(key).and_then(Value::as_str).unwrap_or_default();
        // A detail goes into a log line: one line, bounded.
        text.chars()
            .take(300)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let kind = text("type");
    Problem {
        kind: kind.strip_prefix(ERROR_PREFIX).unwrap_or(&kind).to_owned(),
        detail: text("detail"),
    }
}

/// A problem document from an error response's body; a body that is not
/// one still yields a problem (`kind` empty) so the status is reported.
pub fn parse_problem(body: &[u8]) -> Problem {
    match document("problem", body) {
        Ok(value) => problem_of(&value),
        Err(_) => Problem {
            kind: String::new(),
            detail: String::from_utf8_lossy(body.get(..body.len().min(200)).unwrap_or_default())
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        },
    }
}

pub fn parse_directory(body: &[u8]) -> Result<Directory, AcmeError> {
    const WHAT: &str = "directory";
    let value = document(WHAT, body)?;
    Ok(Directory {
        new_nonce: url(WHAT, &value, "newNonce")?,
        new_account: url(WHAT, &value, "newAccount")?,
        new_order: url(WHAT, &value, "newOrder")?,
    })
}

pub fn parse_order(body: &[u8]) -> Result<Order, AcmeError> {
    const WHAT: &str = "order";
    let value = document(WHAT, body)?;
    let list = value
        .get("authorizations")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(WHAT, "\"authorizations\" is missing".to_owned()))?;
    if list.len() > MAX_AUTHORIZATIONS {
        return Err(malformed(
            WHAT,
            format!("more than {MAX_AUTHORIZATIONS} authorizations"),
        ));
    }
    let mut authorizations = Vec::with_capacity(list.len());
    for item in list {
        let text = item
            .as_str()
            .filter(|text| text.len() <= MAX_STRING && super::wire::Url::parse(text).is_some())
            .ok_or_else(|| malformed(WHAT, "an authorization is not an https URL".to_owned()))?;
        authorizations.push(text.to_owned());
    }
    let certificate = match value.get("certificate") {
        None | Some(Value::Null) => None,
        Some(_) => Some(url(WHAT, &value, "certificate")?),
    };
    Ok(Order {
        status: status(WHAT, &value)?,
        authorizations,
        finalize: url(WHAT, &value, "finalize")?,
        certificate,
        error: problem_in(&value),
    })
}

pub fn parse_authorization(body: &[u8]) -> Result<Authorization, AcmeError> {
    const WHAT: &str = "authorization";
    let value = document(WHAT, body)?;
    let identifier = value
        .get("identifier")
        .filter(|id| id.get("type").and_then(Value::as_str) == Some("dns"))
        .ok_or_else(|| malformed(WHAT, "no dns identifier".to_owned()))?;
    let identifier = string(WHAT, identifier, "value")?.to_owned();
    let challenges = value
        .get("challenges")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(WHAT, "\"challenges\" is missing".to_owned()))?;
    if challenges.len() > MAX_CHALLENGES {
        return Err(malformed(
            WHAT,
            format!("more than {MAX_CHALLENGES} challenges"),
        ));
    }
    let http01 = match challenges
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("http-01"))
    {
        Some(challenge) => Some(parse_challenge_value(challenge)?),
        None => None,
    };
    Ok(Authorization {
        status: status(WHAT, &value)?,
        identifier,
        http01,
    })
}

/// The answer to a challenge POST (§7.5.1).
pub fn parse_challenge(body: &[u8]) -> Result<Challenge, AcmeError> {
    parse_challenge_value(&document("challenge", body)?)
}

fn parse_challenge_value(value: &Value) -> Result<Challenge, AcmeError> {
    const WHAT: &str = "challenge";
    let token = string(WHAT, value, "token")?;
    if !is_base64url(token) || token.len() > 256 {
        return Err(malformed(
            WHAT,
            format!("the token {token:?} is not base64url"),
        ));
    }
    Ok(Challenge {
        url: url(WHAT, value, "url")?,
        token: token.to_owned(),
        status: status(WHAT, value)?,
        error: problem_in(value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_with_its_three_endpoints() {
        let dir = parse_directory(
            br#"{"newNonce":"https://ca.test/nonce","newAccount":"https://ca.test/acct",
                "newOrder":"https://ca.test:14000/order","meta":{"termsOfService":"https://x"}}"#,
        )
        .expect("directory");
        assert_eq!(dir.new_order, "https://ca.test:14000/order");
        let missing = parse_directory(br#"{"newNonce":"https://ca.test/n"}"#).unwrap_err();
        assert!(missing.to_string().contains("newAccount"), "{missing}");
        let plain = parse_directory(
            br#"{"newNonce":"http://ca.test/n","newAccount":"https://a/b","newOrder":"https://a/c"}"#,
        )
        .unwrap_err();
        assert!(plain.to_string().contains("not an https URL"), "{plain}");
        assert!(parse_directory(b"[1,2]").is_err());
        assert!(parse_directory(b"{").is_err());
        assert!(parse_directory(&vec![b' '; MAX_DOCUMENT_BYTES + 1]).is_err());
    }

    #[test]
    fn orders_and_their_states() {
        let order = parse_order(
            br#"{"status":"pending","expires":"2030-01-01T00:00:00Z",
                "identifiers":[{"type":"dns","value":"example.org"}],
                "authorizations":["https://ca.test/authz/1","https://ca.test/authz/2"],
                "finalize":"https://ca.test/finalize/1"}"#,
        )
        .expect("order");
        assert_eq!(order.status, Status::Pending);
        assert_eq!(order.authorizations.len(), 2);
        assert_eq!(order.certificate, None);
        let valid = parse_order(
            br#"{"status":"valid","authorizations":[],"finalize":"https://ca.test/f",
                "certificate":"https://ca.test/cert/9"}"#,
        )
        .expect("valid order");
        assert_eq!(valid.certificate.as_deref(), Some("https://ca.test/cert/9"));
        let invalid = parse_order(
            br#"{"status":"invalid","authorizations":[],"finalize":"https://ca.test/f",
                "error":{"type":"urn:ietf:params:acme:error:unauthorized","detail":"no\nway"}}"#,
        )
        .expect("invalid order");
        let error = invalid.error.expect("error");
        assert!(error.is("unauthorized"));
        assert_eq!(
            error.detail, "no way",
            "control characters do not reach the log"
        );
        assert!(
            parse_order(br#"{"status":"weird","authorizations":[],"finalize":"https://a/f"}"#)
                .is_err()
        );
        let many = format!(
            r#"{{"status":"pending","authorizations":[{}],"finalize":"https://a/f"}}"#,
            vec!["\"https://a/z\""; MAX_AUTHORIZATIONS + 1].join(",")
        );
        assert!(parse_order(many.as_bytes()).is_err());
    }

    #[test]
    fn authorizations_keep_the_http_challenge() {
        let authz = parse_authorization(
            br#"{"status":"pending","identifier":{"type":"dns","value":"example.org"},
                "challenges":[
                  {"type":"dns-01","url":"https://ca.test/c/1","token":"aaa","status":"pending"},
                  {"type":"http-01","url":"https://ca.test/c/2","token":"tok-EN_1","status":"pending"}]}"#,
        )
        .expect("authorization");
        assert_eq!(authz.identifier, "example.org");
        let http = authz.http01.expect("http-01");
        assert_eq!(http.token, "tok-EN_1");
        assert_eq!(http.url, "https://ca.test/c/2");
        let none = parse_authorization(
            br#"{"status":"pending","identifier":{"type":"dns","value":"a.org"},
                "challenges":[{"type":"tls-alpn-01","url":"https://ca.test/c","token":"x","status":"pending"}]}"#,
        )
        .expect("no http-01");
        assert_eq!(none.http01, None);
        // A token that could leave the challenge path is refused.
        let evil = parse_authorization(
            br#"{"status":"pending","identifier":{"type":"dns","value":"a.org"},
                "challenges":[{"type":"http-01","url":"https://ca.test/c","token":"../../x","status":"pending"}]}"#,
        );
        assert!(evil.unwrap_err().to_string().contains("base64url"));
    }

    #[test]
    fn problems_from_error_bodies() {
        let p = parse_problem(
            br#"{"type":"urn:ietf:params:acme:error:badNonce","detail":"JWS has an invalid anti-replay nonce"}"#,
        );
        assert!(p.is("badNonce"));
        assert_eq!(
            p.to_string(),
            "badNonce: JWS has an invalid anti-replay nonce"
        );
        let html = parse_problem(b"<html>\r\nBad gateway</html>");
        assert_eq!(html.kind, "");
        assert_eq!(html.detail, "<html>  Bad gateway</html>");
    }
}

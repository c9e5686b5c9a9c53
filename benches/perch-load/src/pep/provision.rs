//! `perch-load pep-rosters`: the rosters of `pep`'s ring written for a
//! server to load before it starts, instead of 100 000 subscriptions made
//! over XMPP (which take Perch about a minute at 1 000 × 100, and Prosody
//! 0.12 hours: it rewrites a user's whole roster file for every change).
//!
//! - `--format xep0227 --out FILE`: one XEP-0227 `<server-data/>` file,
//!   every account with its password and its contacts (subscription
//!   both), for `perch import FILE` and `ejabberdctl import_piefxis FILE`.
//! - `--format prosody --out DATA_PATH`: Prosody's internal storage
//!   (`DATA_PATH/<host>/roster/<user>.dat`, what its `roster` store holds:
//!   one Lua table per user), for accounts that exist already (created with
//!   `perch-load register`) on a server that is not running.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::args::Args;
use crate::pep_settings::PepSettings;
use crate::xml;

pub const PEP_ROSTERS_HELP: &str = "\
pep-rosters options (defaults in brackets):
  --format xep0227|prosody   a XEP-0227 file (accounts with their password
                         and rosters: perch import, ejabberdctl
                         import_piefxis) or Prosody's internal storage
                         (rosters only, under DATA_PATH/<host>/roster/) []
  --out PATH             the file (xep0227) or Prosody's data_path []
  --accounts N --contacts N   the ring, as `pep` takes it [1000, 100]
  --domain D --user-prefix P --first-user N --password PW   the accounts,
                         as the scenarios take them [localhost, load, 1,
                         load-password]";

/// What the rosters are of.
pub struct Ring {
    pub pep: PepSettings,
    pub domain: String,
    pub prefix: String,
    pub first: usize,
    pub password: String,
}

impl Ring {
    pub fn user(&self, k: usize) -> String {
        format!("{}{}", self.prefix, self.first + k)
    }

    /// The XEP-0227 document.
    pub fn xep0227(&self) -> String {
        let mut s = String::with_capacity(self.pep.accounts * (80 + 70 * self.pep.contacts));
        s.push_str("<?xml version='1.0' encoding='UTF-8'?>\n");
        let _ = writeln!(
            s,
            "<server-data xmlns='urn:xmpp:pie:0'><host jid='{}'>",
            xml::escape(&self.domain)
        );
        for k in 0..self.pep.accounts {
            let _ = write!(
                s,
                "<user name='{}' password='{}'><query xmlns='jabber:iq:roster'>",
                xml::escape(&self.user(k)),
                xml::escape(&self.password)
            );
            for j in self.pep.contacts_of(k) {
                let _ = write!(
                    s,
                    "<item jid='{}@{}' subscription='both'/>",
                    xml::escape(&self.user(j)),
                    xml::escape(&self.domain)
                );
            }
            s.push_str("</query></user>\n");
        }
        s.push_str("</host></server-data>\n");
        s
    }

    /// One user's roster as Prosody's internal storage writes it.
    pub fn prosody_roster(&self, k: usize) -> String {
        let mut s = String::from(
            "return {\n\t[false] = {\n\t\t[\"version\"] = 1;\n\t\t[\"pending\"] = {};\n\t};\n",
        );
        for j in self.pep.contacts_of(k) {
            let _ = write!(
                s,
                "\t[{}] = {{\n\t\t[\"subscription\"] = \"both\";\n\t\t[\"groups\"] = {{}};\n\t}};\n",
                lua_string(&format!("{}@{}", self.user(j), self.domain))
            );
        }
        s.push_str("};\n");
        s
    }

    /// Writes every roster under Prosody's `data_path`.
    pub fn write_prosody(&self, data_path: &Path) -> Result<usize, String> {
        let dir = data_path.join(prosody_encode(&self.domain)).join("roster");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for k in 0..self.pep.accounts {
            let path = dir.join(format!("{}.dat", prosody_encode(&self.user(k))));
            std::fs::write(&path, self.prosody_roster(k))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(self.pep.accounts)
    }
}

/// Prosody's datamanager file names: every byte that is not a letter or
/// digit as `%xx`.
pub fn prosody_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02x}");
        }
    }
    out
}

/// A Lua string literal.
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The command: parses its options and writes.
pub fn command(args: &[String]) -> Result<(), String> {
    let p = Args::parse(
        args,
        &[
            "format",
            "out",
            "accounts",
            "contacts",
            "domain",
            "user-prefix",
            "first-user",
            "password",
        ],
        &[],
    )?;
    let mut pep = PepSettings {
        chat_seconds: 0.0,
        ..PepSettings::default()
    };
    for name in ["accounts", "contacts"] {
        if let Some(v) = p.value(name) {
            pep.set(name, v)?;
        }
    }
    pep.check()?;
    let ring = Ring {
        pep,
        domain: p.value("domain").unwrap_or("localhost").to_string(),
        prefix: p.value("user-prefix").unwrap_or("load").to_string(),
        first: p.bounded("first-user", 1, 0..=100_000_000)?,
        password: p.value("password").unwrap_or("load-password").to_string(),
    };
    let out = p.value("out").ok_or("--out PATH is needed")?;
    match p.value("format") {
        Some("xep0227") => {
            let mut f = std::fs::File::create(out).map_err(|e| format!("{out}: {e}"))?;
            f.write_all(ring.xep0227().as_bytes())
                .map_err(|e| format!("{out}: {e}"))?;
            eprintln!(
                "pep-rosters: {} accounts with {} contacts each in {out}",
                ring.pep.accounts, ring.pep.contacts
            );
        }
        Some("prosody") => {
            let n = ring.write_prosody(Path::new(out))?;
            eprintln!(
                "pep-rosters: {n} rosters of {} contacts under {out}/{}/roster",
                ring.pep.contacts,
                prosody_encode(&ring.domain)
            );
        }
        other => {
            return Err(format!(
                "--format: {} (xep0227, prosody)",
                other.unwrap_or("missing")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Ring {
        Ring {
            pep: PepSettings {
                accounts: 5,
                contacts: 2,
                ..PepSettings::default()
            },
            domain: "localhost".into(),
            prefix: "load".into(),
            first: 1,
            password: "pw'1".into(),
        }
    }

    #[test]
    fn xep0227_has_every_account_and_contact() {
        let doc = ring().xep0227();
        let parsed = roxmltree::Document::parse(&doc).expect("parses");
        let users: Vec<(String, String)> = parsed
            .descendants()
            .filter(|c| c.tag_name().name() == "user")
            .map(|u| {
                (
                    u.attribute("name").unwrap_or("").to_string(),
                    u.attribute("password").unwrap_or("").to_string(),
                )
            })
            .collect();
        let items = parsed
            .descendants()
            .filter(|c| c.tag_name().name() == "item")
            .filter(|c| c.attribute("subscription") == Some("both"))
            .count();
        assert_eq!(users.len(), 5);
        assert_eq!(users[0], ("load1".to_string(), "pw'1".to_string()));
        assert_eq!(items, 10);
        assert!(doc.contains("<item jid='load2@localhost' subscription='both'/>"));
        assert!(doc.contains("<item jid='load5@localhost' subscription='both'/>"));
    }

    #[test]
    fn prosody_files_are_lua_tables_under_the_encoded_names() {
        assert_eq!(
            prosody_encode("conference.localhost"),
            "conference%2elocalhost"
        );
        assert_eq!(prosody_encode("load1"), "load1");
        let r = ring().prosody_roster(0);
        assert!(r.starts_with("return {\n\t[false] = {"), "{r}");
        assert!(
            r.contains("[\"load2@localhost\"] = {\n\t\t[\"subscription\"] = \"both\";"),
            "{r}"
        );
        assert!(r.contains("[\"load5@localhost\"]"), "{r}");
        assert!(!r.contains("load3@"), "{r}");
        let dir = std::env::temp_dir().join(format!("perch-load-rosters-{}", std::process::id()));
        assert_eq!(ring().write_prosody(&dir), Ok(5));
        let text =
            std::fs::read_to_string(dir.join("localhost/roster/load3.dat")).expect("written");
        assert!(text.contains("load2@localhost") && text.contains("load4@localhost"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

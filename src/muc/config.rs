//! A room's configuration and the `muc#roomconfig` form (XEP-0045 §10.1.3,
//! §10.2, registry §15.5.3): the form an owner gets, how a submission is
//! read and validated, and which status codes a change announces (§10.2.1).

use std::fmt;

use crate::forms::{Field, FieldType, Form, FormType, parse_bool};
use crate::jid::Jid;

use super::roles::{PmPolicy, Role};

pub const NS_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";

/// Longest room name, description and password accepted (in characters).
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
pub const MAX_PASSWORD_CHARS: usize = 256;
pub const MAX_LANG_CHARS: usize = 35;

/// Who sees occupants' real JIDs (`muc#roomconfig_whois`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whois {
    /// Semi-anonymous: moderators only.
    Moderators,
    /// Non-anonymous: every occupant.
    Anyone,
}

/// Roles (and offline members, as `none`) whose presence is broadcast
/// (`muc#roomconfig_presencebroadcast`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Broadcast {
    pub moderator: bool,
    pub participant: bool,
    pub visitor: bool,
    /// Members with a reserved nickname who are not in the room are shown
    /// to joining occupants as unavailable.
    pub offline_members: bool,
}

impl Broadcast {
    pub const ALL_PRESENT: Broadcast = Broadcast {
        moderator: true,
        participant: true,
        visitor: true,
        offline_members: false,
    };

    pub fn includes(&self, role: Role) -> bool {
        match role {
            Role::Moderator => self.moderator,
            Role::Participant => self.participant,
            Role::Visitor => self.visitor,
            Role::None => self.offline_members,
        }
    }

    pub fn bits(&self) -> u8 {
        u8::from(self.moderator)
            | u8::from(self.participant) << 1
            | u8::from(self.visitor) << 2
            | u8::from(self.offline_members) << 3
    }

    pub fn from_bits(bits: u8) -> Broadcast {
        Broadcast {
            moderator: bits & 1 != 0,
            participant: bits & 2 != 0,
            visitor: bits & 4 != 0,
            offline_members: bits & 8 != 0,
        }
    }

    fn values(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (on, name) in [
            (self.moderator, "moderator"),
            (self.participant, "participant"),
            (self.visitor, "visitor"),
            (self.offline_members, "none"),
        ] {
            if on {
                out.push(name);
            }
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomConfig {
    pub name: String,
    pub description: String,
    pub language: String,
    pub persistent: bool,
    /// Listed in the service's disco#items.
    pub public: bool,
    pub members_only: bool,
    pub moderated: bool,
    /// `Some` when a password is required to enter.
    pub password: Option<String>,
    pub whois: Whois,
    /// 0: no room-level limit (the service's limit still applies).
    pub max_users: u32,
    pub occupants_may_change_subject: bool,
    pub members_may_invite: bool,
    pub allow_pm: PmPolicy,
    /// Messages of history sent to new occupants.
    pub history_length: u32,
    pub broadcast: Broadcast,
    /// Discussions are logged; recorded for the archive, announced with
    /// status 170.
    pub logging: bool,
}

/// Service-wide values a room configuration starts from and is bounded by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigBounds {
    pub default_history: u32,
    pub max_history: u32,
    pub max_occupants: u32,
}

impl RoomConfig {
    /// A new room's configuration: an open, public, temporary,
    /// semi-anonymous room where anyone present may talk.
    pub fn new(bounds: &ConfigBounds) -> RoomConfig {
        RoomConfig {
            name: String::new(),
            description: String::new(),
            language: String::new(),
            persistent: false,
            public: true,
            members_only: false,
            moderated: false,
            password: None,
            whois: Whois::Moderators,
            max_users: 0,
            occupants_may_change_subject: false,
            members_may_invite: false,
            allow_pm: PmPolicy::Anyone,
            history_length: bounds.default_history.min(bounds.max_history),
            broadcast: Broadcast::ALL_PRESENT,
            logging: false,
        }
    }

    /// Whether the room's messages go into its archive for everyone to
    /// query (XEP-0313): stored rooms that log. A stored room that does
    /// not still writes its join history there.
    pub fn archived(&self) -> bool {
        self.persistent && self.logging
    }

    pub fn non_anonymous(&self) -> bool {
        self.whois == Whois::Anyone
    }

    /// The occupant limit in force.
    pub fn occupant_limit(&self, bounds: &ConfigBounds) -> usize {
        let limit = if self.max_users == 0 {
            bounds.max_occupants
        } else {
            self.max_users.min(bounds.max_occupants)
        };
        limit as usize
    }

    /// The form an owner fills in (§10.1.3), showing the current values.
    /// `owners` and `admins` are the current lists.
    pub fn to_form(
        &self,
        room: &Jid,
        bounds: &ConfigBounds,
        owners: &[&Jid],
        admins: &[&Jid],
    ) -> Form {
        let mut max_users = Field::new("muc#roomconfig_maxusers", FieldType::ListSingle)
            .with_label("Maximum number of occupants")
            .with_value(self.max_users.to_string())
            .with_option("No limit", "0");
        for n in [10u32, 20, 30, 50, 100, 200, 500, 1000] {
            if n <= bounds.max_occupants {
                max_users = max_users.with_option(&n.to_string(), &n.to_string());
            }
        }
        Form::new(FormType::Form)
            .with_title(&format!("Configuration for {room}"))
            .with_instructions("Complete and submit this form to configure the room.")
            .with_field(Field::form_type(NS_ROOMCONFIG))
            .with_field(
                Field::new("muc#roomconfig_roomname", FieldType::TextSingle)
                    .with_label("Title")
                    .with_value(self.name.as_str()),
            )
            .with_field(
                Field::new("muc#roomconfig_roomdesc", FieldType::TextSingle)
                    .with_label("Description")
                    .with_value(self.description.as_str()),
            )
            .with_field(
                Field::new("muc#roomconfig_lang", FieldType::TextSingle)
                    .with_label("Language of the discussions")
                    .with_value(self.language.as_str()),
            )
            .with_field(
                Field::new("muc#roomconfig_persistentroom", FieldType::Boolean)
                    .with_label("Keep the room when the last occupant leaves")
                    .with_bool(self.persistent),
            )
            .with_field(
                Field::new("muc#roomconfig_publicroom", FieldType::Boolean)
                    .with_label("List the room in the public directory")
                    .with_bool(self.public),
            )
            .with_field(
                Field::new("muc#roomconfig_membersonly", FieldType::Boolean)
                    .with_label("Only members may enter")
                    .with_bool(self.members_only),
            )
            .with_field(
                Field::new("muc#roomconfig_moderatedroom", FieldType::Boolean)
                    .with_label("Only occupants with voice may talk")
                    .with_bool(self.moderated),
            )
            .with_field(
                Field::new("muc#roomconfig_passwordprotectedroom", FieldType::Boolean)
                    .with_label("A password is required to enter")
                    .with_bool(self.password.is_some()),
            )
            .with_field(
                Field::new("muc#roomconfig_roomsecret", FieldType::TextPrivate)
                    .with_label("Password")
                    .with_value(self.password.clone().unwrap_or_default()),
            )
            .with_field(
                Field::new("muc#roomconfig_whois", FieldType::ListSingle)
                    .with_label("Who may see occupants' real addresses")
                    .with_option("Moderators only", "moderators")
                    .with_option("Anyone", "anyone")
                    .with_value(match self.whois {
                        Whois::Moderators => "moderators",
                        Whois::Anyone => "anyone",
                    }),
            )
            .with_field(max_users)
            .with_field(
                Field::new("muc#roomconfig_changesubject", FieldType::Boolean)
                    .with_label("Occupants may change the subject")
                    .with_bool(self.occupants_may_change_subject),
            )
            .with_field(
                Field::new("muc#roomconfig_allowinvites", FieldType::Boolean)
                    .with_label("Members may invite others")
                    .with_bool(self.members_may_invite),
            )
            .with_field(
                Field::new("muc#roomconfig_allowpm", FieldType::ListSingle)
                    .with_label("Who may send private messages")
                    .with_option("Anyone", "anyone")
                    .with_option("Participants", "participants")
                    .with_option("Moderators", "moderators")
                    .with_option("Nobody", "none")
                    .with_value(self.allow_pm.as_str()),
            )
            .with_field(
                Field::new("muc#maxhistoryfetch", FieldType::TextSingle)
                    .with_label(&format!(
                        "Messages of history sent to new occupants (at most {})",
                        bounds.max_history
                    ))
                    .with_value(self.history_length.to_string()),
            )
            .with_field(
                Field::new("muc#roomconfig_presencebroadcast", FieldType::ListMulti)
                    .with_label("Roles whose presence is broadcast")
                    .with_option("Moderator", "moderator")
                    .with_option("Participant", "participant")
                    .with_option("Visitor", "visitor")
                    .with_option("Offline members", "none")
                    .with_values(self.broadcast.values()),
            )
            .with_field(
                Field::new("muc#roomconfig_enablelogging", FieldType::Boolean)
                    .with_label("Log the discussions")
                    .with_bool(self.logging),
            )
            // The same switch under the name Prosody's clients know it by
            // (XEP-0313 room archives).
            .with_field(
                Field::new("muc#roomconfig_enablearchiving", FieldType::Boolean)
                    .with_label("Archive the discussions (stored rooms)")
                    .with_bool(self.logging),
            )
            .with_field(
                Field::new("muc#roomconfig_roomadmins", FieldType::JidMulti)
                    .with_label("Room admins")
                    .with_values(admins.iter().map(|j| j.to_string())),
            )
            .with_field(
                Field::new("muc#roomconfig_roomowners", FieldType::JidMulti)
                    .with_label("Room owners")
                    .with_values(owners.iter().map(|j| j.to_string())),
            )
    }
}

/// Why a submitted configuration form was refused (bad-request, §10.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    WrongFormType(String),
    NotABoolean(&'static str, String),
    NotANumber(&'static str, String),
    TooLong(&'static str, usize),
    UnknownValue(&'static str, String),
    NoPassword,
    BadJid(&'static str, String),
    NoOwner,
    TooManyAffiliations(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::WrongFormType(t) => write!(f, "not a room configuration form ({t})"),
            ConfigError::NotABoolean(var, v) => write!(f, "{var}: {v:?} is not a boolean"),
            ConfigError::NotANumber(var, v) => write!(f, "{var}: {v:?} is not an allowed number"),
            ConfigError::TooLong(var, max) => write!(f, "{var}: longer than {max} characters"),
            ConfigError::UnknownValue(var, v) => write!(f, "{var}: unknown value {v:?}"),
            ConfigError::NoPassword => f.write_str("a password-protected room needs a password"),
            ConfigError::BadJid(var, v) => write!(f, "{var}: {v:?} is not a valid JID"),
            ConfigError::NoOwner => f.write_str("a room needs at least one owner"),
            ConfigError::TooManyAffiliations(max) => {
                write!(f, "a room may have at most {max} affiliated users")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// A validated submission: the new configuration and, when the form
/// carried them, the complete owner and admin lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub config: RoomConfig,
    pub owners: Option<Vec<Jid>>,
    pub admins: Option<Vec<Jid>>,
}

/// Applies a submitted form to `current`. Fields the form leaves out keep
/// their value, so a client may send only what it changes (as the instant
/// room request, an empty form, does).
pub fn apply_submission(
    current: &RoomConfig,
    form: &Form,
    bounds: &ConfigBounds,
) -> Result<Submission, ConfigError> {
    if let Some(t) = form.form_type()
        && t != NS_ROOMCONFIG
    {
        return Err(ConfigError::WrongFormType(t.to_string()));
    }
    let mut c = current.clone();
    let text = |var: &'static str, max: usize| -> Result<Option<String>, ConfigError> {
        match form.field(var) {
            None => Ok(None),
            Some(f) => {
                let v = f.values.join("\n");
                if v.chars().count() > max {
                    return Err(ConfigError::TooLong(var, max));
                }
                Ok(Some(v))
            }
        }
    };
    let boolean = |var: &'static str| -> Result<Option<bool>, ConfigError> {
        match form.field(var).map(|f| f.value().unwrap_or("")) {
            None => Ok(None),
            Some(v) => parse_bool(v)
                .map(Some)
                .ok_or_else(|| ConfigError::NotABoolean(var, v.to_string())),
        }
    };
    if let Some(v) = text("muc#roomconfig_roomname", MAX_NAME_CHARS)? {
        c.name = v;
    }
    if let Some(v) = text("muc#roomconfig_roomdesc", MAX_DESCRIPTION_CHARS)? {
        c.description = v;
    }
    if let Some(v) = text("muc#roomconfig_lang", MAX_LANG_CHARS)? {
        c.language = v;
    }
    if let Some(v) = boolean("muc#roomconfig_persistentroom")? {
        c.persistent = v;
    }
    if let Some(v) = boolean("muc#roomconfig_publicroom")? {
        c.public = v;
    }
    if let Some(v) = boolean("muc#roomconfig_membersonly")? {
        c.members_only = v;
    }
    if let Some(v) = boolean("muc#roomconfig_moderatedroom")? {
        c.moderated = v;
    }
    if let Some(v) = boolean("muc#roomconfig_changesubject")? {
        c.occupants_may_change_subject = v;
    }
    if let Some(v) = boolean("muc#roomconfig_allowinvites")? {
        c.members_may_invite = v;
    }
    if let Some(v) = boolean("muc#roomconfig_enablelogging")? {
        c.logging = v;
    }
    if let Some(v) = boolean("muc#roomconfig_enablearchiving")? {
        c.logging = v;
    }
    let secret = text("muc#roomconfig_roomsecret", MAX_PASSWORD_CHARS)?;
    match (boolean("muc#roomconfig_passwordprotectedroom")?, secret) {
        (Some(false), _) => c.password = None,
        (Some(true), Some(s)) if !s.is_empty() => c.password = Some(s),
        (Some(true), _) => {
            if c.password.is_none() {
                return Err(ConfigError::NoPassword);
            }
        }
        // Without the flag, a secret alone decides.
        (None, Some(s)) => c.password = (!s.is_empty()).then_some(s),
        (None, None) => {}
    }
    if let Some(v) = form.value("muc#roomconfig_whois") {
        c.whois = match v {
            "moderators" => Whois::Moderators,
            "anyone" => Whois::Anyone,
            other => {
                return Err(ConfigError::UnknownValue(
                    "muc#roomconfig_whois",
                    other.to_string(),
                ));
            }
        };
    }
    if let Some(v) = form.value("muc#roomconfig_allowpm") {
        c.allow_pm = PmPolicy::parse(v)
            .ok_or_else(|| ConfigError::UnknownValue("muc#roomconfig_allowpm", v.to_string()))?;
    }
    if let Some(v) = form.value("muc#roomconfig_maxusers") {
        c.max_users = match v {
            "none" | "" => 0,
            n => n
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n <= bounds.max_occupants)
                .ok_or_else(|| ConfigError::NotANumber("muc#roomconfig_maxusers", n.to_string()))?,
        };
    }
    // `muc#maxhistoryfetch` is the registered name; the other is what some
    // clients send for the same setting.
    for var in ["muc#maxhistoryfetch", "muc#roomconfig_historylength"] {
        if let Some(v) = form.value(var) {
            c.history_length = v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n <= bounds.max_history)
                .ok_or_else(|| ConfigError::NotANumber("muc#maxhistoryfetch", v.to_string()))?;
        }
    }
    if let Some(f) = form.field("muc#roomconfig_presencebroadcast") {
        let mut b = Broadcast {
            moderator: false,
            participant: false,
            visitor: false,
            offline_members: false,
        };
        for v in &f.values {
            match v.as_str() {
                "moderator" => b.moderator = true,
                "participant" => b.participant = true,
                "visitor" => b.visitor = true,
                "none" => b.offline_members = true,
                other => {
                    return Err(ConfigError::UnknownValue(
                        "muc#roomconfig_presencebroadcast",
                        other.to_string(),
                    ));
                }
            }
        }
        c.broadcast = b;
    }
    let jids = |var: &'static str| -> Result<Option<Vec<Jid>>, ConfigError> {
        let Some(f) = form.field(var) else {
            return Ok(None);
        };
        let mut out: Vec<Jid> = Vec::new();
        for v in f.values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            let j = Jid::parse(v)
                .map_err(|_| ConfigError::BadJid(var, v.to_string()))?
                .to_bare();
            if !out.contains(&j) {
                out.push(j);
            }
        }
        Ok(Some(out))
    };
    let owners = jids("muc#roomconfig_roomowners")?;
    if owners.as_ref().is_some_and(Vec::is_empty) {
        return Err(ConfigError::NoOwner);
    }
    let admins = jids("muc#roomconfig_roomadmins")?;
    Ok(Submission {
        config: c,
        owners,
        admins,
    })
}

/// The status codes of §10.2.1 that announce a change from `old` to `new`:
/// 170/171 for logging, 172/173 for anonymity, 104 for anything else.
pub fn change_codes(old: &RoomConfig, new: &RoomConfig) -> Vec<u16> {
    let mut codes = Vec::new();
    if old.logging != new.logging {
        codes.push(if new.logging { 170 } else { 171 });
    }
    if old.whois != new.whois {
        codes.push(if new.whois == Whois::Anyone { 172 } else { 173 });
    }
    let mut rest_old = old.clone();
    rest_old.logging = new.logging;
    rest_old.whois = new.whois;
    if rest_old != *new {
        codes.push(104);
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Element;

    const BOUNDS: ConfigBounds = ConfigBounds {
        default_history: 20,
        max_history: 100,
        max_occupants: 500,
    };

    fn submit(fields: &str) -> Form {
        let xml = format!("<x xmlns='jabber:x:data' type='submit'>{fields}</x>");
        Form::parse(&Element::parse(&xml).expect("xml")).expect("form")
    }

    fn field(var: &str, values: &[&str]) -> String {
        let values: String = values
            .iter()
            .map(|v| format!("<value>{v}</value>"))
            .collect();
        format!("<field var='{var}'>{values}</field>")
    }

    #[test]
    fn empty_submission_keeps_everything() {
        let c = RoomConfig::new(&BOUNDS);
        let s = apply_submission(&c, &submit(""), &BOUNDS).expect("ok");
        assert_eq!(s.config, c);
        assert_eq!(s.owners, None);
        assert_eq!(c.history_length, 20);
        assert!(c.public && !c.persistent && !c.members_only);
    }

    #[test]
    fn fields_are_read() {
        let c = RoomConfig::new(&BOUNDS);
        let form = submit(
            &[
                field("FORM_TYPE", &[NS_ROOMCONFIG]),
                field("muc#roomconfig_roomname", &["Garden"]),
                field("muc#roomconfig_membersonly", &["1"]),
                field("muc#roomconfig_persistentroom", &["true"]),
                field("muc#roomconfig_passwordprotectedroom", &["1"]),
                field("muc#roomconfig_roomsecret", &["s3cret"]),
                field("muc#roomconfig_whois", &["anyone"]),
                field("muc#roomconfig_maxusers", &["30"]),
                field("muc#roomconfig_allowpm", &["moderators"]),
                field("muc#maxhistoryfetch", &["5"]),
                field(
                    "muc#roomconfig_presencebroadcast",
                    &["none", "participant", "moderator"],
                ),
                field("muc#roomconfig_roomowners", &["a@b/c", "a@b", "d@e"]),
            ]
            .concat(),
        );
        let s = apply_submission(&c, &form, &BOUNDS).expect("ok");
        let n = &s.config;
        assert_eq!(n.name, "Garden");
        assert!(n.members_only && n.persistent);
        assert_eq!(n.password.as_deref(), Some("s3cret"));
        assert_eq!(n.whois, Whois::Anyone);
        assert_eq!(n.max_users, 30);
        assert_eq!(n.allow_pm, PmPolicy::Moderators);
        assert_eq!(n.history_length, 5);
        assert!(n.broadcast.offline_members && n.broadcast.participant && !n.broadcast.visitor);
        assert_eq!(
            s.owners
                .map(|o| o.iter().map(Jid::to_string).collect::<Vec<_>>()),
            Some(vec!["a@b".to_string(), "d@e".to_string()])
        );
        let codes = change_codes(&c, n);
        assert_eq!(codes, vec![172, 104]);
        assert_eq!(change_codes(n, n), Vec::<u16>::new());
        let mut logged = n.clone();
        logged.logging = true;
        assert_eq!(change_codes(n, &logged), vec![170]);
    }

    #[test]
    fn bad_values_are_refused() {
        let c = RoomConfig::new(&BOUNDS);
        let cases = [
            (field("FORM_TYPE", &["urn:other"]), "form type"),
            (field("muc#roomconfig_membersonly", &["maybe"]), "boolean"),
            (field("muc#roomconfig_maxusers", &["lots"]), "number"),
            (
                field("muc#roomconfig_maxusers", &["501"]),
                "above the service limit",
            ),
            (
                field("muc#maxhistoryfetch", &["101"]),
                "history above the limit",
            ),
            (field("muc#roomconfig_whois", &["nobody"]), "whois"),
            (field("muc#roomconfig_allowpm", &["everyone"]), "allowpm"),
            (
                field("muc#roomconfig_presencebroadcast", &["owner"]),
                "broadcast",
            ),
            (
                field("muc#roomconfig_passwordprotectedroom", &["1"]),
                "no password",
            ),
            (field("muc#roomconfig_roomowners", &[]), "no owner"),
            (field("muc#roomconfig_roomadmins", &["a@@b"]), "bad jid"),
            (
                field(
                    "muc#roomconfig_roomname",
                    &[&"x".repeat(MAX_NAME_CHARS + 1)],
                ),
                "long name",
            ),
        ];
        for (f, what) in cases {
            assert!(
                apply_submission(&c, &submit(&f), &BOUNDS).is_err(),
                "{what}"
            );
        }
    }

    #[test]
    fn form_round_trips_through_a_submission() {
        let mut c = RoomConfig::new(&BOUNDS);
        c.name = "Garden".into();
        c.password = Some("pw".into());
        c.moderated = true;
        c.broadcast.visitor = false;
        let room = Jid::parse("garden@conference.localhost").expect("jid");
        let owner = Jid::parse("romeo@localhost").expect("jid");
        let mut form = c.to_form(&room, &BOUNDS, &[&owner], &[]);
        form.kind = FormType::Submit;
        let s = apply_submission(&RoomConfig::new(&BOUNDS), &form, &BOUNDS).expect("ok");
        assert_eq!(s.config, c);
        assert_eq!(s.owners, Some(vec![owner]));
        assert_eq!(s.admins, Some(vec![]));
    }
}

//! The configuration of one pubsub node (XEP-0060 §8.2 and §16.4.3), shared
//! by the personal eventing service (PEP) and the pubsub service: the
//! defaults of each, the configuration form an owner edits, the
//! `publish-options` preconditions of a publish (§7.1.5), and the compact
//! binary form kept in the database. Pure: no store, no sockets.
//!
//! Stored layout, version 1 (integers are unsigned LEB128 varints, a
//! string is a varint byte length then UTF-8):
//! ```text
//! u8 version = 1
//! str title, str description, str type
//! varint max_items: 0 = max, n + 1 = n items
//! u8 flags: 1 persist_items, 2 deliver_notifications, 4 deliver_payloads,
//!           8 notify_delete, 16 notify_retract
//! u8 access_model, u8 publish_model, u8 send_last_published_item,
//! u8 notification_type, u8 itemreply   (the `code` of each enum below)
//! varint group count, then each roster group as str
//! ```

use std::collections::BTreeSet;
use std::fmt;

use crate::forms::{Field, FieldType, Form, FormType, NS_DATA, parse_bool};
use crate::im::roster::MAX_NAME_BYTES;
use crate::xml::Element;

/// `FORM_TYPE` of the configuration form (§16.4.3).
pub const NS_NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
/// `FORM_TYPE` of the publish options of a publish request (§7.1.5).
pub const NS_PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
/// XEP-0122 data form validation, used for the `max_items` range.
pub const NS_XDATA_VALIDATE: &str = "http://jabber.org/protocol/xdata-validate";

/// Longest title, description or type accepted, in characters: the whole
/// configuration is loaded with the node, so it stays small.
pub const MAX_TEXT_CHARS: usize = 1000;
/// Most roster groups one node may name.
pub const MAX_ROSTER_GROUPS: usize = 256;

const VERSION: u8 = 1;

const TITLE: &str = "pubsub#title";
const DESCRIPTION: &str = "pubsub#description";
const TYPE: &str = "pubsub#type";
const MAX_ITEMS: &str = "pubsub#max_items";
const PERSIST_ITEMS: &str = "pubsub#persist_items";
const ACCESS_MODEL: &str = "pubsub#access_model";
const ROSTER_GROUPS: &str = "pubsub#roster_groups_allowed";
const PUBLISH_MODEL: &str = "pubsub#publish_model";
const SEND_LAST: &str = "pubsub#send_last_published_item";
const DELIVER_NOTIFICATIONS: &str = "pubsub#deliver_notifications";
const DELIVER_PAYLOADS: &str = "pubsub#deliver_payloads";
const NOTIFICATION_TYPE: &str = "pubsub#notification_type";
const NOTIFY_DELETE: &str = "pubsub#notify_delete";
const NOTIFY_RETRACT: &str = "pubsub#notify_retract";
const ITEMREPLY: &str = "pubsub#itemreply";

/// What reading and offering a list-single option set takes, so that one
/// function serves all of them.
trait Choice: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    fn parse(s: &str) -> Option<Self>;
    fn label(self) -> &'static str;
}

/// A list-single option set: the form value, the option label and the
/// stable byte kept in the database for each variant. Declaration order is
/// the order the configuration form offers the options in.
macro_rules! config_enum {
    (
        $(#[$doc:meta])*
        $name:ident {
            $($(#[$vdoc:meta])* $variant:ident = $code:literal, $value:literal, $label:literal;)+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the configuration form lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written in a data form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }

            /// Reads a data form value; `None` for anything unknown.
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The label of the option in the configuration form.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }

            fn code(self) -> u8 {
                match self {
                    $($name::$variant => $code,)+
                }
            }

            fn from_code(code: u8) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl Choice for $name {
            const ALL: &'static [$name] = $name::ALL;
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
            fn parse(s: &str) -> Option<$name> {
                $name::parse(s)
            }
            fn label(self) -> &'static str {
                $name::label(self)
            }
        }
    };
}

config_enum! {
    /// Who may subscribe to the node and retrieve its items (§4.5).
    AccessModel {
        /// The owner approves each subscription.
        Authorize = 0, "authorize", "authorize";
        /// Anyone.
        Open = 1, "open", "open";
        /// Contacts with a presence subscription to the owner.
        Presence = 2, "presence", "presence";
        /// Contacts in one of the allowed roster groups.
        Roster = 3, "roster", "roster";
        /// Only JIDs the owner listed.
        Whitelist = 4, "whitelist", "whitelist";
    }
}

config_enum! {
    /// Who may publish to the node.
    PublishModel {
        /// Owners and publishers.
        Publishers = 0, "publishers", "publishers";
        /// Subscribers too.
        Subscribers = 1, "subscribers", "subscribers";
        /// Anyone.
        Open = 2, "open", "open";
    }
}

config_enum! {
    /// When the last published item is sent without being asked for.
    SendLastPublished {
        Never = 0, "never", "never";
        /// When a subscription is made.
        OnSub = 1, "on_sub", "on_sub";
        /// Also when a subscriber comes online (what PEP relies on).
        OnSubAndPresence = 2, "on_sub_and_presence", "on_sub_and_presence";
    }
}

config_enum! {
    /// The `type` of the messages that carry event notifications.
    NotificationType {
        Normal = 0, "normal", "Messages of type normal";
        Headline = 1, "headline", "Messages of type headline";
    }
}

config_enum! {
    /// Whose JID the items carry as their publisher.
    ItemReply {
        Owner = 0, "owner", "Include the node owner's JID";
        Publisher = 1, "publisher", "Include the item publisher's JID";
        None = 2, "none", "Don't include any JID with items";
    }
}

/// `pubsub#max_items`: a number of items, or `max` for as many as the
/// server allows (the XEP-0060 `integer-or-max` datatype).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxItems {
    Count(u32),
    Max,
}

impl MaxItems {
    /// Reads a form value. Only `1..=limit` and `max` are accepted: a node
    /// that keeps no item is not something this server offers.
    fn parse(value: &str, limit: u32) -> Option<MaxItems> {
        let value = value.trim();
        if value == "max" {
            return Some(MaxItems::Max);
        }
        // `u32::from_str` takes a leading `+`; the datatype does not.
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        value
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=limit).contains(n))
            .map(MaxItems::Count)
    }
}

/// The configuration of one node. Every field is a `pubsub#` option of the
/// same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    pub title: String,
    pub description: String,
    /// `pubsub#type`: what the payloads are, usually their namespace.
    pub node_type: String,
    pub max_items: MaxItems,
    pub persist_items: bool,
    pub access_model: AccessModel,
    /// Which of the owner's roster groups may subscribe when the access
    /// model is `roster`.
    pub roster_groups_allowed: Vec<String>,
    pub publish_model: PublishModel,
    pub send_last_published_item: SendLastPublished,
    pub deliver_notifications: bool,
    pub deliver_payloads: bool,
    pub notification_type: NotificationType,
    pub notify_delete: bool,
    pub notify_retract: bool,
    pub itemreply: ItemReply,
}

/// Why a form was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A wrong `FORM_TYPE`, an unknown field or a bad value: `<not-acceptable/>`.
    NotAcceptable(String),
    /// A publish-options precondition the existing node does not meet
    /// (§7.1.5): `<conflict/>` with `<precondition-not-met/>`.
    PreconditionNotMet(String),
}

impl ConfigError {
    /// The text to send along with the error.
    pub fn text(&self) -> &str {
        match self {
            ConfigError::NotAcceptable(t) | ConfigError::PreconditionNotMet(t) => t,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for ConfigError {}

fn not_acceptable(text: String) -> ConfigError {
    ConfigError::NotAcceptable(text)
}

/// A value echoed in an error text, cut short: the sender gets it back and
/// a form value can be as long as the stanza.
fn quoted(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}…", value.get(..end).unwrap_or_default()),
        None => format!("{value:?}"),
    }
}

/// One validated field of a submitted form.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Setting {
    Title(String),
    Description(String),
    NodeType(String),
    MaxItems(MaxItems),
    PersistItems(bool),
    AccessModel(AccessModel),
    RosterGroups(Vec<String>),
    PublishModel(PublishModel),
    SendLast(SendLastPublished),
    DeliverNotifications(bool),
    DeliverPayloads(bool),
    NotificationType(NotificationType),
    NotifyDelete(bool),
    NotifyRetract(bool),
    ItemReply(ItemReply),
}

impl Setting {
    fn var(&self) -> &'static str {
        match self {
            Setting::Title(_) => TITLE,
            Setting::Description(_) => DESCRIPTION,
            Setting::NodeType(_) => TYPE,
            Setting::MaxItems(_) => MAX_ITEMS,
            Setting::PersistItems(_) => PERSIST_ITEMS,
            Setting::AccessModel(_) => ACCESS_MODEL,
            Setting::RosterGroups(_) => ROSTER_GROUPS,
            Setting::PublishModel(_) => PUBLISH_MODEL,
            Setting::SendLast(_) => SEND_LAST,
            Setting::DeliverNotifications(_) => DELIVER_NOTIFICATIONS,
            Setting::DeliverPayloads(_) => DELIVER_PAYLOADS,
            Setting::NotificationType(_) => NOTIFICATION_TYPE,
            Setting::NotifyDelete(_) => NOTIFY_DELETE,
            Setting::NotifyRetract(_) => NOTIFY_RETRACT,
            Setting::ItemReply(_) => ITEMREPLY,
        }
    }

    /// Reads field `var`. The field's `type` attribute is not looked at:
    /// what a value means is decided by the var alone (clients echo the
    /// form with whatever types they like).
    fn parse(var: &str, field: &Field, limit: u32) -> Result<Setting, ConfigError> {
        Ok(match var {
            TITLE => Setting::Title(text(var, field)?),
            DESCRIPTION => Setting::Description(text(var, field)?),
            TYPE => Setting::NodeType(text(var, field)?),
            MAX_ITEMS => {
                let v = required(var, field)?;
                Setting::MaxItems(MaxItems::parse(v, limit).ok_or_else(|| {
                    not_acceptable(format!(
                        "{var} must be an integer from 1 to {limit} or max, not {}",
                        quoted(v)
                    ))
                })?)
            }
            PERSIST_ITEMS => Setting::PersistItems(boolean(var, field)?),
            ACCESS_MODEL => Setting::AccessModel(choice(var, field)?),
            ROSTER_GROUPS => Setting::RosterGroups(groups(var, field)?),
            PUBLISH_MODEL => Setting::PublishModel(choice(var, field)?),
            SEND_LAST => Setting::SendLast(choice(var, field)?),
            DELIVER_NOTIFICATIONS => Setting::DeliverNotifications(boolean(var, field)?),
            DELIVER_PAYLOADS => Setting::DeliverPayloads(boolean(var, field)?),
            NOTIFICATION_TYPE => Setting::NotificationType(choice(var, field)?),
            NOTIFY_DELETE => Setting::NotifyDelete(boolean(var, field)?),
            NOTIFY_RETRACT => Setting::NotifyRetract(boolean(var, field)?),
            ITEMREPLY => Setting::ItemReply(choice(var, field)?),
            _ => return Err(not_acceptable(format!("Unknown field: {var}"))),
        })
    }
}

/// The value of a single-valued field, if it has one.
fn single<'a>(var: &str, field: &'a Field) -> Result<Option<&'a str>, ConfigError> {
    match field.values.as_slice() {
        [] => Ok(None),
        [v] => Ok(Some(v)),
        _ => Err(not_acceptable(format!("{var} takes a single value"))),
    }
}

fn required<'a>(var: &str, field: &'a Field) -> Result<&'a str, ConfigError> {
    single(var, field)?.ok_or_else(|| not_acceptable(format!("{var} needs a value")))
}

fn text(var: &str, field: &Field) -> Result<String, ConfigError> {
    let v = single(var, field)?.unwrap_or_default();
    if v.chars().count() > MAX_TEXT_CHARS {
        return Err(not_acceptable(format!(
            "{var} is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(v.to_string())
}

fn boolean(var: &str, field: &Field) -> Result<bool, ConfigError> {
    let v = required(var, field)?;
    parse_bool(v).ok_or_else(|| {
        not_acceptable(format!(
            "{var} must be a boolean (1, 0, true or false), not {}",
            quoted(v)
        ))
    })
}

fn choice<T: Choice>(var: &str, field: &Field) -> Result<T, ConfigError> {
    let v = required(var, field)?;
    T::parse(v.trim()).ok_or_else(|| {
        let allowed: Vec<&str> = T::ALL.iter().map(|c| c.as_str()).collect();
        not_acceptable(format!(
            "{var} must be one of {}, not {}",
            allowed.join(", "),
            quoted(v)
        ))
    })
}

/// The allowed roster groups: empty values name no group and are dropped,
/// as are repeats.
fn groups(var: &str, field: &Field) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for g in field.values.iter().filter(|g| !g.is_empty()) {
        if g.len() > MAX_NAME_BYTES {
            return Err(not_acceptable(format!(
                "{var}: a roster group name is longer than {MAX_NAME_BYTES} bytes"
            )));
        }
        if !out.contains(g) {
            if out.len() >= MAX_ROSTER_GROUPS {
                return Err(not_acceptable(format!(
                    "{var}: more than {MAX_ROSTER_GROUPS} groups"
                )));
            }
            out.push(g.clone());
        }
    }
    Ok(out)
}

/// Reads every field of `form` after checking its `FORM_TYPE` (which must
/// be present when `form_type_required`). All of it is validated before
/// anything is applied, so a refused form changes nothing.
fn parse_settings(
    form: &Form,
    namespace: &str,
    form_type_required: bool,
    limit: u32,
) -> Result<Vec<Setting>, ConfigError> {
    let mut form_type_seen = false;
    let mut settings = Vec::with_capacity(form.fields.len());
    for field in &form.fields {
        let Some(var) = field.var.as_deref() else {
            // XEP-0004 §3.2: only a fixed field may lack a var; it is
            // text for a person, not data.
            if field.kind == Some(FieldType::Fixed) {
                continue;
            }
            return Err(not_acceptable("a field without a var".to_string()));
        };
        if var == "FORM_TYPE" {
            let value = single(var, field)?.map(str::trim);
            if value != Some(namespace) {
                return Err(not_acceptable(format!("FORM_TYPE must be {namespace}")));
            }
            form_type_seen = true;
            continue;
        }
        settings.push(Setting::parse(var, field, limit)?);
    }
    if form_type_required && !form_type_seen {
        return Err(not_acceptable(format!("FORM_TYPE must be {namespace}")));
    }
    Ok(settings)
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let a: BTreeSet<&str> = a.iter().map(String::as_str).collect();
    let b: BTreeSet<&str> = b.iter().map(String::as_str).collect();
    a == b
}

impl NodeConfig {
    /// The configuration of a node created in an account's PEP service
    /// (XEP-0163 §4: one item, contacts with a presence subscription see
    /// it, and they get it again whenever they come online).
    pub fn pep_default() -> Self {
        NodeConfig {
            title: String::new(),
            description: String::new(),
            node_type: String::new(),
            max_items: MaxItems::Count(1),
            persist_items: true,
            access_model: AccessModel::Presence,
            roster_groups_allowed: Vec::new(),
            publish_model: PublishModel::Publishers,
            send_last_published_item: SendLastPublished::OnSubAndPresence,
            deliver_notifications: true,
            deliver_payloads: true,
            notification_type: NotificationType::Headline,
            notify_delete: true,
            notify_retract: true,
            itemreply: ItemReply::None,
        }
    }

    /// The configuration of a node created on the pubsub service: open to
    /// anyone, a short history, nothing resent on subscription.
    pub fn service_default() -> Self {
        NodeConfig {
            max_items: MaxItems::Count(20),
            access_model: AccessModel::Open,
            send_last_published_item: SendLastPublished::Never,
            ..NodeConfig::pep_default()
        }
    }

    /// How many items the node keeps, given the server's `limit`: `max`
    /// and any larger count (stored before the limit was lowered) mean
    /// `limit`.
    pub fn max_items(&self, limit: u32) -> usize {
        let n = match self.max_items {
            MaxItems::Max => limit,
            MaxItems::Count(n) => n.min(limit),
        };
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// The configuration form (§8.2.1), `<x xmlns='jabber:x:data'
    /// type='form'/>`. The fields, their order, labels and options are
    /// fixed: the black-box test scripts (pubsub_config.scs) compare them.
    pub fn to_form(&self, limit: u32) -> Element {
        // Field::to_element has no XEP-0122 <validate/>: added by hand.
        let mut max_items = Field::new(MAX_ITEMS, FieldType::TextSingle)
            .with_label("Max # of items to persist")
            .to_element();
        max_items.push_child(
            Element::new("validate", NS_XDATA_VALIDATE)
                .with_attr("datatype", "pubsub:integer-or-max")
                .with_child(
                    Element::new("range", NS_XDATA_VALIDATE)
                        .with_attr("min", "1")
                        .with_attr("max", limit.to_string()),
                ),
        );
        let value = match self.max_items {
            MaxItems::Max => "max".to_string(),
            // A count above a since-lowered limit is shown as the limit, so
            // that the form echoed back is accepted.
            MaxItems::Count(n) => n.min(limit).to_string(),
        };
        max_items.push_child(Element::new("value", NS_DATA).with_text(value));

        let mut x = Element::new("x", NS_DATA).with_attr("type", FormType::Form.as_str());
        x.push_child(Field::form_type(NS_NODE_CONFIG).to_element());
        x.push_child(text_field(TITLE, "Title", &self.title));
        x.push_child(text_field(DESCRIPTION, "Description", &self.description));
        x.push_child(text_field(
            TYPE,
            "The type of node data, usually specified by the namespace of the payload (if any)",
            &self.node_type,
        ));
        x.push_child(max_items);
        let fields = [
            bool_field(
                PERSIST_ITEMS,
                "Persist items to storage",
                self.persist_items,
            ),
            list_field(
                ACCESS_MODEL,
                Some("Specify the subscriber model"),
                self.access_model,
            ),
            Field::new(ROSTER_GROUPS, FieldType::ListMulti)
                .with_label("Roster groups allowed to subscribe")
                .with_values(self.roster_groups_allowed.iter().cloned()),
            list_field(
                PUBLISH_MODEL,
                Some("Specify the publisher model"),
                self.publish_model,
            ),
            list_field(SEND_LAST, None, self.send_last_published_item),
            bool_field(
                DELIVER_NOTIFICATIONS,
                "Whether to deliver event notifications",
                self.deliver_notifications,
            ),
            bool_field(
                DELIVER_PAYLOADS,
                "Whether to deliver payloads with event notifications",
                self.deliver_payloads,
            ),
            list_field(
                NOTIFICATION_TYPE,
                Some("Specify the delivery style for notifications"),
                self.notification_type,
            ),
            bool_field(
                NOTIFY_DELETE,
                "Whether to notify subscribers when the node is deleted",
                self.notify_delete,
            ),
            bool_field(
                NOTIFY_RETRACT,
                "Whether to notify subscribers when items are removed from the node",
                self.notify_retract,
            ),
            list_field(
                ITEMREPLY,
                Some("Specify whose JID to include as the publisher of items"),
                self.itemreply,
            ),
        ];
        for field in fields {
            x.push_child(field.to_element());
        }
        x
    }

    /// Applies a submitted configuration form (§8.2.4). Fields left out
    /// keep their value; an unknown field, a bad value or a `FORM_TYPE`
    /// other than [`NS_NODE_CONFIG`] refuses the whole form and changes
    /// nothing. The form's own type is not looked at: the caller handles a
    /// `cancel` before getting here.
    pub fn apply(&mut self, form: &Form, limit: u32) -> Result<(), ConfigError> {
        for setting in parse_settings(form, NS_NODE_CONFIG, false, limit)? {
            self.set(setting);
        }
        Ok(())
    }

    /// The configuration of a node that a publish with `publish-options`
    /// creates (§7.1.5 case 3): `base`, the default, with every option of
    /// the form applied. The form needs the [`NS_PUBLISH_OPTIONS`]
    /// `FORM_TYPE`; its fields are node configuration fields.
    pub fn from_publish_options(
        base: NodeConfig,
        form: &Form,
        limit: u32,
    ) -> Result<NodeConfig, ConfigError> {
        let mut config = base;
        for setting in parse_settings(form, NS_PUBLISH_OPTIONS, true, limit)? {
            config.set(setting);
        }
        Ok(config)
    }

    /// Checks the `publish-options` of a publish to an existing node
    /// (§7.1.5 case 1): every field must equal the node's value, compared
    /// by meaning (`true` is `1`, groups are a set). A malformed form, an
    /// unknown field or a bad value is refused as not acceptable before
    /// anything is compared; then the first mismatching field is named.
    pub fn check_preconditions(&self, form: &Form, limit: u32) -> Result<(), ConfigError> {
        for setting in parse_settings(form, NS_PUBLISH_OPTIONS, true, limit)? {
            if !self.matches(&setting) {
                let var = setting.var();
                let name = var.strip_prefix("pubsub#").unwrap_or(var);
                return Err(ConfigError::PreconditionNotMet(format!(
                    "Field does not match: {name}"
                )));
            }
        }
        Ok(())
    }

    fn set(&mut self, setting: Setting) {
        match setting {
            Setting::Title(v) => self.title = v,
            Setting::Description(v) => self.description = v,
            Setting::NodeType(v) => self.node_type = v,
            Setting::MaxItems(v) => self.max_items = v,
            Setting::PersistItems(v) => self.persist_items = v,
            Setting::AccessModel(v) => self.access_model = v,
            Setting::RosterGroups(v) => self.roster_groups_allowed = v,
            Setting::PublishModel(v) => self.publish_model = v,
            Setting::SendLast(v) => self.send_last_published_item = v,
            Setting::DeliverNotifications(v) => self.deliver_notifications = v,
            Setting::DeliverPayloads(v) => self.deliver_payloads = v,
            Setting::NotificationType(v) => self.notification_type = v,
            Setting::NotifyDelete(v) => self.notify_delete = v,
            Setting::NotifyRetract(v) => self.notify_retract = v,
            Setting::ItemReply(v) => self.itemreply = v,
        }
    }

    fn matches(&self, setting: &Setting) -> bool {
        match setting {
            Setting::Title(v) => self.title == *v,
            Setting::Description(v) => self.description == *v,
            Setting::NodeType(v) => self.node_type == *v,
            Setting::MaxItems(v) => self.max_items == *v,
            Setting::PersistItems(v) => self.persist_items == *v,
            Setting::AccessModel(v) => self.access_model == *v,
            Setting::RosterGroups(v) => same_set(&self.roster_groups_allowed, v),
            Setting::PublishModel(v) => self.publish_model == *v,
            Setting::SendLast(v) => self.send_last_published_item == *v,
            Setting::DeliverNotifications(v) => self.deliver_notifications == *v,
            Setting::DeliverPayloads(v) => self.deliver_payloads == *v,
            Setting::NotificationType(v) => self.notification_type == *v,
            Setting::NotifyDelete(v) => self.notify_delete == *v,
            Setting::NotifyRetract(v) => self.notify_retract == *v,
            Setting::ItemReply(v) => self.itemreply == *v,
        }
    }

    /// The database form (layout in the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            16 + self.title.len()
                + self.description.len()
                + self.node_type.len()
                + self
                    .roster_groups_allowed
                    .iter()
                    .map(|g| g.len() + 1)
                    .sum::<usize>(),
        );
        out.push(VERSION);
        put_str(&mut out, &self.title);
        put_str(&mut out, &self.description);
        put_str(&mut out, &self.node_type);
        put_varint(
            &mut out,
            match self.max_items {
                MaxItems::Max => 0,
                MaxItems::Count(n) => u64::from(n) + 1,
            },
        );
        let mut flags = 0;
        for (on, bit) in [
            (self.persist_items, PERSIST_ITEMS_BIT),
            (self.deliver_notifications, DELIVER_NOTIFICATIONS_BIT),
            (self.deliver_payloads, DELIVER_PAYLOADS_BIT),
            (self.notify_delete, NOTIFY_DELETE_BIT),
            (self.notify_retract, NOTIFY_RETRACT_BIT),
        ] {
            if on {
                flags |= bit;
            }
        }
        out.push(flags);
        out.push(self.access_model.code());
        out.push(self.publish_model.code());
        out.push(self.send_last_published_item.code());
        out.push(self.notification_type.code());
        out.push(self.itemreply.code());
        put_varint(&mut out, self.roster_groups_allowed.len() as u64);
        for group in &self.roster_groups_allowed {
            put_str(&mut out, group);
        }
        out
    }

    /// Reads what [`NodeConfig::encode`] wrote. Anything malformed
    /// (another version, a truncated or overlong record, an unknown enum
    /// byte, invalid UTF-8) is an error; no input makes it panic or
    /// allocate more than the input's length.
    pub fn decode(bytes: &[u8]) -> Result<NodeConfig, String> {
        let mut r = Reader { bytes };
        match r.u8()? {
            VERSION => {}
            v => return Err(format!("node config: unknown layout version {v}")),
        }
        let title = r.str()?;
        let description = r.str()?;
        let node_type = r.str()?;
        let max_items = match r.varint()? {
            0 => MaxItems::Max,
            n => MaxItems::Count(
                u32::try_from(n - 1).map_err(|_| "node config: max_items too large".to_string())?,
            ),
        };
        let flags = r.u8()?;
        if flags & !ALL_FLAGS != 0 {
            return Err(format!("node config: unknown flags {flags:#04x}"));
        }
        let access_model = r.code(AccessModel::from_code, "access_model")?;
        let publish_model = r.code(PublishModel::from_code, "publish_model")?;
        let send_last_published_item =
            r.code(SendLastPublished::from_code, "send_last_published_item")?;
        let notification_type = r.code(NotificationType::from_code, "notification_type")?;
        let itemreply = r.code(ItemReply::from_code, "itemreply")?;
        let count = r.varint()?;
        // Each group takes at least its length byte: a count beyond the
        // bytes left is malformed, and checking it first bounds the loop.
        if count > r.bytes.len() as u64 {
            return Err("node config: truncated".to_string());
        }
        let mut roster_groups_allowed = Vec::new();
        for _ in 0..count {
            roster_groups_allowed.push(r.str()?);
        }
        if !r.bytes.is_empty() {
            return Err("node config: trailing bytes".to_string());
        }
        Ok(NodeConfig {
            title,
            description,
            node_type,
            max_items,
            persist_items: flags & PERSIST_ITEMS_BIT != 0,
            access_model,
            roster_groups_allowed,
            publish_model,
            send_last_published_item,
            deliver_notifications: flags & DELIVER_NOTIFICATIONS_BIT != 0,
            deliver_payloads: flags & DELIVER_PAYLOADS_BIT != 0,
            notification_type,
            notify_delete: flags & NOTIFY_DELETE_BIT != 0,
            notify_retract: flags & NOTIFY_RETRACT_BIT != 0,
            itemreply,
        })
    }
}

fn text_field(var: &str, label: &str, value: &str) -> Element {
    let field = Field::new(var, FieldType::TextSingle).with_label(label);
    if value.is_empty() {
        field.to_element()
    } else {
        field.with_value(value).to_element()
    }
}

fn bool_field(var: &str, label: &str, value: bool) -> Field {
    Field::new(var, FieldType::Boolean)
        .with_label(label)
        .with_bool(value)
}

fn list_field<T: Choice>(var: &str, label: Option<&str>, value: T) -> Field {
    let mut field = Field::new(var, FieldType::ListSingle);
    field.label = label.map(str::to_string);
    for &option in T::ALL {
        field = field.with_option(option.label(), option.as_str());
    }
    field.with_value(value.as_str())
}

const PERSIST_ITEMS_BIT: u8 = 1;
const DELIVER_NOTIFICATIONS_BIT: u8 = 2;
const DELIVER_PAYLOADS_BIT: u8 = 4;
const NOTIFY_DELETE_BIT: u8 = 8;
const NOTIFY_RETRACT_BIT: u8 = 16;
const ALL_FLAGS: u8 = PERSIST_ITEMS_BIT
    | DELIVER_NOTIFICATIONS_BIT
    | DELIVER_PAYLOADS_BIT
    | NOTIFY_DELETE_BIT
    | NOTIFY_RETRACT_BIT;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let (head, tail) = self
            .bytes
            .split_at_checked(n)
            .ok_or_else(|| "node config: truncated".to_string())?;
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        match self.take(1)? {
            [b] => Ok(*b),
            _ => Err("node config: truncated".to_string()),
        }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte holds bit 63 only.
            if shift == 63 && bits > 1 {
                break;
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("node config: integer too large".to_string())
    }

    fn str(&mut self) -> Result<String, String> {
        let len =
            usize::try_from(self.varint()?).map_err(|_| "node config: truncated".to_string())?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "node config: invalid UTF-8".to_string())
    }

    fn code<T>(&mut self, from_code: fn(u8) -> Option<T>, what: &str) -> Result<T, String> {
        let code = self.u8()?;
        from_code(code).ok_or_else(|| format!("node config: unknown {what} {code}"))
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

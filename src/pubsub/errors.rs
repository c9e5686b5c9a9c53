//! The errors XEP-0060 names: a defined condition (RFC 6120 §8.3.3) with,
//! where the XEP says so, an application-specific one in
//! `http://jabber.org/protocol/pubsub#errors`.

use crate::stanza::{AppCondition, Condition, StanzaError};

pub const NS_PUBSUB_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";

const fn app(name: &'static str) -> AppCondition {
    AppCondition {
        name,
        ns: NS_PUBSUB_ERRORS,
        feature: None,
    }
}

pub const NODEID_REQUIRED: AppCondition = app("nodeid-required");
pub const ITEM_REQUIRED: AppCondition = app("item-required");
pub const INVALID_JID: AppCondition = app("invalid-jid");
pub const INVALID_PAYLOAD: AppCondition = app("invalid-payload");
pub const PAYLOAD_TOO_BIG: AppCondition = app("payload-too-big");
pub const PAYLOAD_REQUIRED: AppCondition = app("payload-required");
pub const PRECONDITION_NOT_MET: AppCondition = app("precondition-not-met");
pub const NOT_SUBSCRIBED: AppCondition = app("not-subscribed");
pub const PRESENCE_SUBSCRIPTION_REQUIRED: AppCondition = app("presence-subscription-required");
pub const NOT_IN_ROSTER_GROUP: AppCondition = app("not-in-roster-group");
pub const CLOSED_NODE: AppCondition = app("closed-node");
pub const MAX_NODES_EXCEEDED: AppCondition = app("max-nodes-exceeded");
pub const TOO_MANY_SUBSCRIPTIONS: AppCondition = app("too-many-subscriptions");
pub const INVALID_OPTIONS: AppCondition = app("invalid-options");
pub const INVALID_SUBID: AppCondition = app("invalid-subid");

/// `<feature-not-implemented/>` with `<unsupported feature='…'/>`.
pub fn unsupported(feature: &'static str) -> StanzaError {
    StanzaError::new(Condition::FeatureNotImplemented).with_app(AppCondition {
        name: "unsupported",
        ns: NS_PUBSUB_ERRORS,
        feature: Some(feature),
    })
}

pub fn bad_request(text: &str) -> StanzaError {
    StanzaError::new(Condition::BadRequest).with_text(text)
}

pub fn not_acceptable(text: &str) -> StanzaError {
    StanzaError::new(Condition::NotAcceptable).with_text(text)
}

pub fn item_not_found() -> StanzaError {
    StanzaError::new(Condition::ItemNotFound)
}

pub fn forbidden() -> StanzaError {
    StanzaError::new(Condition::Forbidden)
}

pub fn internal() -> StanzaError {
    StanzaError::new(Condition::InternalServerError)
}

/// §7.1.5: publish-options that do not match the node.
pub fn precondition_not_met(text: &str) -> StanzaError {
    StanzaError::new(Condition::Conflict)
        .with_text(text)
        .with_app(PRECONDITION_NOT_MET)
}

//! The upload service at a domain of its own (`upload.<domain>`): a route
//! table entry answering disco (XEP-0363 §3) and slot requests (§4).
//! Only accounts of this server's hosts get slots; a remote user's request
//! (which needs federation to arrive at all) is `forbidden`.

use std::rc::Rc;

use crate::env::{Env, Service};
use crate::forms::{Field, Form, FormType};
use crate::jid::Jid;
use crate::stanza::{self, Condition, ErrorType, Kind, StanzaError};
use crate::store::StoreError;
use crate::store::upload::{self, FileRecord, Refusal};
use crate::xml::Element;

use super::slot::{self, RequestError, SlotRequest};
use super::token::{self, PutGrant};
use super::{NS_UPLOAD, Upload, unix_secs};

const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const NS_PING: &str = "urn:xmpp:ping";

/// What the service is called, in disco#info and its host's disco#items.
pub const NAME: &str = "HTTP File Upload";

/// The upload service; one serves every configured upload domain.
pub struct UploadService {
    upload: Rc<Upload>,
}

impl UploadService {
    pub fn new(upload: Rc<Upload>) -> UploadService {
        UploadService { upload }
    }
}

impl Service for UploadService {
    fn name(&self) -> &str {
        NAME
    }

    fn handle(&self, env: &Env, stanza: Element, to: &Jid) {
        match Kind::of(&stanza) {
            Some(Kind::Iq) => self.iq(env, &stanza, to),
            Some(Kind::Message) if stanza.attr("type") != Some("error") => env.bounce(
                &stanza,
                StanzaError::new(Condition::ServiceUnavailable).with_by(to.domain()),
            ),
            _ => {}
        }
    }
}

impl UploadService {
    fn iq(&self, env: &Env, iq: &Element, to: &Jid) {
        let get = match iq.attr("type") {
            Some("get") => true,
            Some("set") => false,
            _ => return,
        };
        let Some(requester) = iq.attr("from").and_then(|f| Jid::parse(f).ok()) else {
            return;
        };
        if to.local().is_some() || to.resource().is_some() {
            return env.bounce(iq, StanzaError::new(Condition::ServiceUnavailable));
        }
        let Some(payload) = iq.first_child() else {
            return env.bounce(
                iq,
                StanzaError::new(Condition::BadRequest).with_text("an empty iq"),
            );
        };
        let answer = match (payload.ns.as_ref(), payload.name.as_ref(), get) {
            (NS_UPLOAD, "request", true) => {
                return self.request_slot(env, iq, payload, &requester, to);
            }
            (NS_DISCO_INFO, "query", true) if payload.attr("node").is_none() => Ok(info(env)),
            (NS_DISCO_INFO | NS_DISCO_ITEMS, "query", true) => match payload.attr("node") {
                Some(_) => Err(StanzaError::new(Condition::ItemNotFound)),
                None => Ok(Element::new("query", NS_DISCO_ITEMS)),
            },
            (NS_PING, "ping", true) => {
                return env.reply_to_sender(stanza::iq_result(iq));
            }
            _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
        };
        match answer {
            Ok(payload) => env.reply_to_sender(stanza::iq_result(iq).with_child(payload)),
            Err(e) => env.bounce(iq, e),
        }
    }

    /// §4: judges the request, then stores the slot and answers once it is
    /// on disk (a PUT may follow the answer at once).
    fn request_slot(&self, env: &Env, iq: &Element, request: &Element, requester: &Jid, to: &Jid) {
        if requester.local().is_none() || !env.is_local_host(requester.domain()) {
            return env.bounce(
                iq,
                StanzaError::new(Condition::Forbidden)
                    .with_text("Only accounts of this server may upload files"),
            );
        }
        let config = &env.config.upload;
        let judged = slot::parse(request).and_then(|r| slot::check(&r, config).map(|()| r));
        let request = match judged {
            Ok(request) => request,
            Err(e) => return bounce_request_error(env, iq, e),
        };
        let host = env
            .config
            .hosts
            .iter()
            .find(|h| h.upload.as_deref() == Some(to.domain()));
        let Some(base) = host.and_then(|h| self.upload.base_for(env.config, &h.domain)) else {
            return env.bounce(iq, StanzaError::new(Condition::ServiceUnavailable));
        };
        let owner = requester.to_bare();
        let now = unix_secs(env.now());
        let limits = limits(config);
        match env
            .store
            .uploads()
            .check_room(owner.as_str(), request.size, now, &limits)
        {
            Ok(Ok(())) => {}
            Ok(Err(refusal)) => return bounce_refusal(env, iq, refusal),
            Err(e) => {
                log::error!("upload: reading the quotas of {owner}: {e}");
                return env.bounce(iq, StanzaError::new(Condition::InternalServerError));
            }
        }
        let id = token::new_id(env.ids.random_bytes::<16>());
        let answer = slot_answer(&self.upload, &base, &id, &request, now, config);
        let record = FileRecord {
            owner: owner.as_str().to_string(),
            name: request.name,
            size: request.size,
            content_type: request.content_type,
            created: now,
            stored: None,
        };
        let store = env.store.clone();
        let op = upload::insert_slot_op(&id, record, limits);
        let reply = stanza::iq_result(iq).with_child(answer);
        let iq = iq.clone();
        env.after_async(async move { store.write(op).await }, move |env, written| {
            match written {
                Ok(()) => env.reply_to_sender(reply),
                // Another request took the room since the check above.
                Err(StoreError::LimitExceeded(why)) => env.bounce(
                    &iq,
                    StanzaError::new(Condition::ResourceConstraint)
                        .with_type(ErrorType::Wait)
                        .with_text(why),
                ),
                // The account was deleted meanwhile.
                Err(StoreError::NotFound(_)) => {
                    env.bounce(&iq, StanzaError::new(Condition::Forbidden))
                }
                Err(e) => {
                    log::error!("upload: storing a slot: {e}");
                    env.bounce(&iq, StanzaError::new(Condition::InternalServerError));
                }
            }
        });
    }
}

/// The store's limits from `[upload]`. A slot takes room for twice its
/// lifetime: an upload begun just before its URL expired may still be
/// under way.
pub fn limits(config: &crate::config::UploadConfig) -> upload::Limits {
    upload::Limits {
        daily_quota: config.daily_quota_bytes,
        // Counts stored files plus slots handed out and still usable, so
        // that uploads under way at once cannot overshoot it together.
        max_total: config.max_total_bytes,
        pending_secs: 2 * u64::from(config.slot_lifetime_secs),
        max_slots_per_day: MAX_SLOTS_PER_DAY,
    }
}

/// Slots one account may be given a day, whatever their sizes (each is a
/// record in the database): far more files than a person shares, far
/// fewer records than would weigh on the database.
pub const MAX_SLOTS_PER_DAY: usize = 1_000;

/// The `<slot/>` for file `id`: signed PUT URL (and the same signature as
/// a bearer token), GET URL.
fn slot_answer(
    upload: &Upload,
    base: &str,
    id: &str,
    request: &SlotRequest,
    now: u64,
    config: &crate::config::UploadConfig,
) -> Element {
    let grant = PutGrant {
        id,
        name: &request.name,
        size: request.size,
        content_type: request.content_type.as_deref(),
        expires: now.saturating_add(u64::from(config.slot_lifetime_secs)),
    };
    let sig = grant.sign(upload.key());
    slot::slot_element(
        &token::put_url(base, &grant, &sig),
        &format!("Bearer {sig}"),
        &token::get_url(base, id, &request.name),
    )
}

/// §3: the identity, the feature and the largest file size.
fn info(env: &Env) -> Element {
    let form = Form::new(FormType::Result)
        .with_field(Field::form_type(NS_UPLOAD))
        // Without a type, as in the XEP's example.
        .with_field(Field {
            var: Some("max-file-size".to_string()),
            values: vec![env.config.upload.max_file_bytes.to_string()],
            ..Field::default()
        });
    let mut query = Element::new("query", NS_DISCO_INFO).with_child(
        Element::new("identity", NS_DISCO_INFO)
            .with_attr("category", "store")
            .with_attr("type", "file")
            .with_attr("name", NAME),
    );
    for var in [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_UPLOAD] {
        query.push_child(Element::new("feature", NS_DISCO_INFO).with_attr("var", var));
    }
    query.push_child(form.to_element());
    query
}

/// The error reply for `error`, with its application element.
fn bounce_request_error(env: &Env, iq: &Element, error: RequestError) {
    bounce_with(env, iq, &error.stanza_error(), error.app_element());
}

/// §6: a quota or the storage is full, with when to try again (the quota).
fn bounce_refusal(env: &Env, iq: &Element, refusal: Refusal) {
    let error = StanzaError::new(Condition::ResourceConstraint)
        .with_type(ErrorType::Wait)
        .with_text(refusal.to_string());
    let retry = match refusal {
        Refusal::Quota { retry_at } => std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_secs(retry_at))
            .map(|at| {
                Element::new("retry", NS_UPLOAD)
                    .with_attr("stamp", crate::datetime::format_utc(at, false))
            }),
        Refusal::Full => None,
    };
    bounce_with(env, iq, &error, retry);
}

/// Sends the error reply for `iq`, with `extra` inside `<error/>` after
/// the condition and the text.
fn bounce_with(env: &Env, iq: &Element, error: &StanzaError, extra: Option<Element>) {
    let Some(mut reply) = stanza::error_reply(iq, error) else {
        return;
    };
    if let Some(extra) = extra
        && let Some(el) = reply.children_mut().find(|c| c.name.as_ref() == "error")
    {
        el.push_child(extra);
    }
    env.reply_to_sender(reply);
}

//! The service-wide rules every request applies: who may create nodes,
//! how many nodes and items a service keeps, and how a configuration
//! error is answered.

use crate::config::CreateNodes;
use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{Condition, StanzaError};

use super::config::{ConfigError, NodeConfig};
use super::{ServiceRef, errors};

/// Who may create nodes (§8.1.1): on PEP the account itself; on the
/// service, as `[pubsub] create_nodes` says.
pub fn may_create(env: &Env, svc: &ServiceRef, requester: &Jid) -> bool {
    match svc.account {
        Some(account) => account.bare_str() == requester.bare_str(),
        None => match env.config.pubsub.create_nodes {
            CreateNodes::Admins => env.admins.contains(requester),
            CreateNodes::Local => env.is_local_host(requester.domain()),
            CreateNodes::Anyone => true,
        },
    }
}

/// The most nodes the service may hold.
pub fn max_nodes(env: &Env, svc: &ServiceRef) -> usize {
    let limits = &env.config.pubsub;
    if svc.is_pep() {
        limits.max_nodes_per_account as usize
    } else {
        limits.max_nodes as usize
    }
}

/// A node configuration error as XEP-0060 answers it.
pub fn config_error(e: ConfigError) -> StanzaError {
    match e {
        ConfigError::NotAcceptable(text) => errors::not_acceptable(&text)
            .with_app(errors::INVALID_OPTIONS)
            .with_type(crate::stanza::ErrorType::Modify),
        ConfigError::PreconditionNotMet(text) => errors::precondition_not_met(&text),
    }
}

/// The items a node keeps under its configuration and the server's limit.
pub fn kept_items(env: &Env, config: &NodeConfig) -> usize {
    if config.persist_items {
        config.max_items(env.config.pubsub.max_items)
    } else {
        0
    }
}

pub fn check_node_count(env: &Env, svc: &ServiceRef) -> Result<(), StanzaError> {
    let count = env.store.pubsub().node_count(svc.jid).map_err(|e| {
        log::error!("counting the nodes of {}: {e}", svc.jid);
        errors::internal()
    })?;
    let max = max_nodes(env, svc);
    if count >= max {
        return Err(StanzaError::new(Condition::NotAllowed)
            .with_text(format!("this service holds at most {max} nodes"))
            .with_app(errors::MAX_NODES_EXCEEDED));
    }
    Ok(())
}

/// A configuration this server can honour: the `authorize` access model's
/// approval by the owner (XEP-0060 §6.1.4) is not offered, so a node is
/// not set to it (an owner admits someone by making them a member).
pub fn check_offered(config: &NodeConfig) -> Result<(), StanzaError> {
    if config.access_model == super::config::AccessModel::Authorize {
        return Err(errors::not_acceptable(
            "the authorize access model is not offered; use whitelist and member affiliations",
        )
        .with_app(errors::INVALID_OPTIONS));
    }
    Ok(())
}

//! What a pubsub request answers, and what follows the answer.

use crate::env::Continuation;
use crate::xml::Element;

/// What a request answers, and what follows the answer (the last item
/// after a subscription comes after its result, §6.1.7).
pub struct Answer {
    pub payload: Option<Element>,
    pub then: Option<Continuation>,
}

impl Answer {
    pub fn empty() -> Answer {
        Answer {
            payload: None,
            then: None,
        }
    }

    pub fn with(payload: Element) -> Answer {
        Answer {
            payload: Some(payload),
            then: None,
        }
    }
}

//! The presence subscription state machine of RFC 6121 Appendix A, for the
//! user's server handling what its user sends (outbound, §A.2) and what a
//! contact sends to its user (inbound, §A.3). Pure functions of a state and
//! a stanza type; `subscription_flow` applies them to rosters and routes.
//!
//! A state is the subscription proper plus the two "pending" flags and the
//! pre-approval flag (§3.4), which RFC 6121 models separately.

use super::roster::Subscription;

/// The relationship between the user and one contact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubState {
    pub subscription: Subscription,
    /// The user asked for the contact's presence and has no answer yet.
    pub pending_out: bool,
    /// The contact asked for the user's presence and has no answer yet.
    pub pending_in: bool,
    /// The user approved a request the contact has not sent yet.
    pub approved: bool,
}

impl SubState {
    fn with(self, to: bool, from: bool) -> SubState {
        SubState {
            subscription: Subscription::from_parts(to, from),
            ..self
        }
    }

    fn to(self) -> bool {
        self.subscription.has_to()
    }

    fn from(self) -> bool {
        self.subscription.has_from()
    }
}

/// The four subscription-related presence types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl Request {
    pub fn from_type(ty: Option<&str>) -> Option<Request> {
        match ty {
            Some("subscribe") => Some(Request::Subscribe),
            Some("subscribed") => Some(Request::Subscribed),
            Some("unsubscribe") => Some(Request::Unsubscribe),
            Some("unsubscribed") => Some(Request::Unsubscribed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Request::Subscribe => "subscribe",
            Request::Subscribed => "subscribed",
            Request::Unsubscribe => "unsubscribe",
            Request::Unsubscribed => "unsubscribed",
        }
    }
}

/// What the user's server does with a subscription stanza its user sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outbound {
    pub next: SubState,
    /// Route the stanza to the contact. A "subscribed" without a request to
    /// answer is a pre-approval and stays on the server (§3.4).
    pub route: bool,
}

pub fn outbound(state: SubState, request: Request) -> Outbound {
    match request {
        // §3.1.2: routed in every state; the contact's server answers for
        // an existing subscription itself.
        Request::Subscribe => Outbound {
            next: SubState {
                pending_out: state.pending_out || !state.to(),
                ..state
            },
            route: true,
        },
        // §3.1.5 approving a request, §3.4 pre-approving.
        Request::Subscribed if state.pending_in => Outbound {
            next: SubState {
                pending_in: false,
                approved: false,
                ..state.with(state.to(), true)
            },
            route: true,
        },
        Request::Subscribed => Outbound {
            next: SubState {
                approved: state.approved || !state.from(),
                ..state
            },
            route: false,
        },
        // §3.3.2: the user cancels its subscription or its request.
        Request::Unsubscribe => Outbound {
            next: SubState {
                pending_out: false,
                ..state.with(false, state.from())
            },
            route: true,
        },
        // §3.2.2: the user revokes the contact's subscription, denies its
        // request, or withdraws a pre-approval.
        Request::Unsubscribed => Outbound {
            next: SubState {
                pending_in: false,
                approved: false,
                ..state.with(state.to(), false)
            },
            route: true,
        },
    }
}

/// What the user's server does with a subscription stanza a contact sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundAction {
    /// Deliver it to the user's available resources (stored until then for
    /// a request).
    Deliver,
    /// Answer "subscribed" on the user's behalf: the contact is subscribed
    /// already, or the user pre-approved it (§3.1.3).
    AutoApprove,
    /// Nothing changes; the user does not see it.
    Ignore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inbound {
    pub next: SubState,
    pub action: InboundAction,
}

pub fn inbound(state: SubState, request: Request) -> Inbound {
    let unchanged = |action| Inbound {
        next: state,
        action,
    };
    match request {
        Request::Subscribe if state.from() => unchanged(InboundAction::AutoApprove),
        Request::Subscribe if state.approved => Inbound {
            next: SubState {
                approved: false,
                ..state.with(state.to(), true)
            },
            action: InboundAction::AutoApprove,
        },
        Request::Subscribe if state.pending_in => unchanged(InboundAction::Ignore),
        Request::Subscribe => Inbound {
            next: SubState {
                pending_in: true,
                ..state
            },
            action: InboundAction::Deliver,
        },
        Request::Subscribed if state.pending_out => Inbound {
            next: SubState {
                pending_out: false,
                ..state.with(true, state.from())
            },
            action: InboundAction::Deliver,
        },
        Request::Unsubscribe if state.from() || state.pending_in => Inbound {
            next: SubState {
                pending_in: false,
                ..state.with(state.to(), false)
            },
            action: InboundAction::Deliver,
        },
        Request::Unsubscribed if state.to() || state.pending_out => Inbound {
            next: SubState {
                pending_out: false,
                ..state.with(false, state.from())
            },
            action: InboundAction::Deliver,
        },
        Request::Subscribed | Request::Unsubscribe | Request::Unsubscribed => {
            unchanged(InboundAction::Ignore)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Request::*;
    use Subscription as S;

    /// The nine states of Appendix A, by their RFC names.
    fn st(name: &str) -> SubState {
        let (subscription, pending_out, pending_in) = match name {
            "None" => (S::None, false, false),
            "None + Pending Out" => (S::None, true, false),
            "None + Pending In" => (S::None, false, true),
            "None + Pending Out/In" => (S::None, true, true),
            "To" => (S::To, false, false),
            "To + Pending In" => (S::To, false, true),
            "From" => (S::From, false, false),
            "From + Pending Out" => (S::From, true, false),
            "Both" => (S::Both, false, false),
            other => panic!("unknown state {other}"),
        };
        SubState {
            subscription,
            pending_out,
            pending_in,
            approved: false,
        }
    }

    const ALL: [&str; 9] = [
        "None",
        "None + Pending Out",
        "None + Pending In",
        "None + Pending Out/In",
        "To",
        "To + Pending In",
        "From",
        "From + Pending Out",
        "Both",
    ];

    #[test]
    fn outbound_subscribe_a_2_1() {
        let expect = [
            ("None", "None + Pending Out"),
            ("None + Pending Out", "None + Pending Out"),
            ("None + Pending In", "None + Pending Out/In"),
            ("None + Pending Out/In", "None + Pending Out/In"),
            ("To", "To"),
            ("To + Pending In", "To + Pending In"),
            ("From", "From + Pending Out"),
            ("From + Pending Out", "From + Pending Out"),
            ("Both", "Both"),
        ];
        for (from, to) in expect {
            let o = outbound(st(from), Subscribe);
            assert_eq!(o.next, st(to), "{from}");
            assert!(o.route, "{from}");
        }
    }

    #[test]
    fn outbound_subscribed_a_2_2() {
        let approve = [
            ("None + Pending In", "From"),
            ("None + Pending Out/In", "From + Pending Out"),
            ("To + Pending In", "Both"),
        ];
        for (from, to) in approve {
            let o = outbound(st(from), Subscribed);
            assert_eq!(o.next, st(to), "{from}");
            assert!(o.route, "{from}");
        }
        // Without a request to answer: a pre-approval, not routed.
        for from in ["None", "None + Pending Out", "To"] {
            let o = outbound(st(from), Subscribed);
            assert!(!o.route, "{from}");
            assert_eq!(
                o.next,
                SubState {
                    approved: true,
                    ..st(from)
                },
                "{from}"
            );
        }
        // Already subscribed: nothing at all.
        for from in ["From", "From + Pending Out", "Both"] {
            let o = outbound(st(from), Subscribed);
            assert_eq!(o.next, st(from), "{from}");
            assert!(!o.route, "{from}");
        }
    }

    #[test]
    fn outbound_unsubscribe_a_2_3() {
        let expect = [
            ("None", "None"),
            ("None + Pending Out", "None"),
            ("None + Pending In", "None + Pending In"),
            ("None + Pending Out/In", "None + Pending In"),
            ("To", "None"),
            ("To + Pending In", "None + Pending In"),
            ("From", "From"),
            ("From + Pending Out", "From"),
            ("Both", "From"),
        ];
        for (from, to) in expect {
            let o = outbound(st(from), Unsubscribe);
            assert_eq!(o.next, st(to), "{from}");
            assert!(o.route);
        }
    }

    #[test]
    fn outbound_unsubscribed_a_2_4() {
        let expect = [
            ("None", "None"),
            ("None + Pending Out", "None + Pending Out"),
            ("None + Pending In", "None"),
            ("None + Pending Out/In", "None + Pending Out"),
            ("To", "To"),
            ("To + Pending In", "To"),
            ("From", "None"),
            ("From + Pending Out", "None + Pending Out"),
            ("Both", "To"),
        ];
        for (from, to) in expect {
            let o = outbound(st(from), Unsubscribed);
            assert_eq!(o.next, st(to), "{from}");
            assert!(o.route);
        }
        let preapproved = SubState {
            approved: true,
            ..st("None")
        };
        assert_eq!(outbound(preapproved, Unsubscribed).next, st("None"));
    }

    #[test]
    fn inbound_subscribe_a_3_1() {
        for from in ["None", "None + Pending Out", "To"] {
            let i = inbound(st(from), Subscribe);
            assert_eq!(i.action, InboundAction::Deliver, "{from}");
            assert!(i.next.pending_in, "{from}");
        }
        for from in [
            "None + Pending In",
            "None + Pending Out/In",
            "To + Pending In",
        ] {
            assert_eq!(
                inbound(st(from), Subscribe),
                Inbound {
                    next: st(from),
                    action: InboundAction::Ignore
                },
                "{from}"
            );
        }
        for from in ["From", "From + Pending Out", "Both"] {
            assert_eq!(
                inbound(st(from), Subscribe),
                Inbound {
                    next: st(from),
                    action: InboundAction::AutoApprove
                },
                "{from}"
            );
        }
    }

    #[test]
    fn inbound_subscribe_with_preapproval() {
        let expect = [
            ("None", "From"),
            ("None + Pending Out", "From + Pending Out"),
            ("To", "Both"),
        ];
        for (from, to) in expect {
            let state = SubState {
                approved: true,
                ..st(from)
            };
            assert_eq!(
                inbound(state, Subscribe),
                Inbound {
                    next: st(to),
                    action: InboundAction::AutoApprove
                },
                "{from}"
            );
        }
    }

    fn check_inbound(request: Request, changes: &[(&str, &str)]) {
        for name in ALL {
            let got = inbound(st(name), request);
            match changes.iter().find(|(from, _)| *from == name) {
                Some((_, to)) => {
                    assert_eq!(got.next, st(to), "{request:?} in {name}");
                    assert_eq!(got.action, InboundAction::Deliver, "{request:?} in {name}");
                }
                None => {
                    assert_eq!(got.next, st(name), "{request:?} in {name}");
                    assert_eq!(got.action, InboundAction::Ignore, "{request:?} in {name}");
                }
            }
        }
    }

    #[test]
    fn inbound_subscribed_a_3_2() {
        check_inbound(
            Subscribed,
            &[
                ("None + Pending Out", "To"),
                ("None + Pending Out/In", "To + Pending In"),
                ("From + Pending Out", "Both"),
            ],
        );
    }

    #[test]
    fn inbound_unsubscribe_a_3_3() {
        check_inbound(
            Unsubscribe,
            &[
                ("None + Pending In", "None"),
                ("None + Pending Out/In", "None + Pending Out"),
                ("To + Pending In", "To"),
                ("From", "None"),
                ("From + Pending Out", "None + Pending Out"),
                ("Both", "To"),
            ],
        );
    }

    #[test]
    fn inbound_unsubscribed_a_3_4() {
        check_inbound(
            Unsubscribed,
            &[
                ("None + Pending Out", "None"),
                ("None + Pending Out/In", "None + Pending In"),
                ("To", "None"),
                ("To + Pending In", "None + Pending In"),
                ("From + Pending Out", "From"),
                ("Both", "From"),
            ],
        );
    }

    #[test]
    fn request_types() {
        for r in [Subscribe, Subscribed, Unsubscribe, Unsubscribed] {
            assert_eq!(Request::from_type(Some(r.as_str())), Some(r));
        }
        assert_eq!(Request::from_type(Some("probe")), None);
        assert_eq!(Request::from_type(None), None);
    }
}

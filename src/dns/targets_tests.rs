//! Tests of RFC 2782 ordering and of the merge of direct-TLS and STARTTLS
//! records, with scripted random numbers.

use super::*;

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
    Srv {
        priority,
        weight,
        port,
        target: target.into(),
    }
}

/// An rng that returns `values` in turn (then 0), and records the bounds
/// it was asked for.
fn scripted(
    values: &[u64],
) -> (
    impl FnMut(u64) -> u64,
    std::rc::Rc<std::cell::RefCell<Vec<u64>>>,
) {
    let bounds = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = bounds.clone();
    let mut values = values.iter().copied();
    let rng = move |bound| {
        seen.borrow_mut().push(bound);
        values.next().unwrap_or(0)
    };
    (rng, bounds)
}

fn targets_of(ordered: &[Srv]) -> Vec<&str> {
    ordered.iter().map(|s| s.target.as_str()).collect()
}

#[test]
fn ascending_priority() {
    let records = vec![
        srv(20, 0, 1, "c"),
        srv(10, 0, 1, "a"),
        srv(30, 0, 1, "d"),
        srv(10, 0, 1, "b"),
    ];
    let (mut rng, _) = scripted(&[]);
    assert_eq!(
        targets_of(&order_srv(records, &mut rng)),
        ["a", "b", "c", "d"]
    );
}

#[test]
fn weighted_choice_uses_running_sums() {
    // Weights 10, 20 and 0: the weight-0 record is placed first, so the
    // running sums are 0 (zero), 10 (ten), 30 (twenty).
    let records = || {
        vec![
            srv(1, 10, 1, "ten"),
            srv(1, 20, 1, "twenty"),
            srv(1, 0, 1, "zero"),
        ]
    };
    let cases: [(&[u64], [&str; 3]); 5] = [
        (&[0, 0], ["zero", "ten", "twenty"]),
        (&[1, 0], ["ten", "zero", "twenty"]),
        (&[10, 0], ["ten", "zero", "twenty"]),
        (&[11, 0], ["twenty", "zero", "ten"]),
        (&[30, 5], ["twenty", "ten", "zero"]),
    ];
    for (values, expected) in cases {
        let (mut rng, bounds) = scripted(values);
        assert_eq!(
            targets_of(&order_srv(records(), &mut rng)),
            expected,
            "{values:?}"
        );
        // Asked for a number up to the sum of the weights left each time.
        assert_eq!(bounds.borrow()[0], 30);
        assert_eq!(bounds.borrow().len(), 3);
    }
}

#[test]
fn all_zero_weights_keep_received_order() {
    let records = vec![srv(5, 0, 1, "x"), srv(5, 0, 1, "y"), srv(5, 0, 1, "z")];
    let (mut rng, bounds) = scripted(&[]);
    assert_eq!(targets_of(&order_srv(records, &mut rng)), ["x", "y", "z"]);
    assert!(bounds.borrow().iter().all(|&b| b == 0));
}

#[test]
fn out_of_range_random_numbers_are_clamped() {
    let records = vec![srv(1, 1, 1, "a"), srv(1, 1, 1, "b")];
    let (mut rng, _) = scripted(&[u64::MAX, u64::MAX]);
    assert_eq!(targets_of(&order_srv(records, &mut rng)), ["b", "a"]);
}

#[test]
fn weights_give_proportional_chances() {
    // A fixed linear congruential generator: deterministic, yet spread.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rng = |bound: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % (bound + 1)
    };
    let mut heavy_first = 0;
    let runs = 4_000;
    for _ in 0..runs {
        let records = vec![srv(0, 10, 1, "light"), srv(0, 30, 1, "heavy")];
        if order_srv(records, &mut rng)[0].target == "heavy" {
            heavy_first += 1;
        }
    }
    // Expected 30/40 (the tie at 0 goes to "light": 29.x/40 really).
    let share = f64::from(heavy_first) / f64::from(runs);
    assert!((0.70..0.78).contains(&share), "heavy first in {share}");
}

#[test]
fn no_records_fall_back_to_the_domain() {
    let (mut rng, _) = scripted(&[]);
    assert_eq!(
        plan("example.org", 5269, vec![], vec![], &mut rng),
        vec![Target {
            host: "example.org".into(),
            port: 5269,
            direct_tls: false,
        }]
    );
}

#[test]
fn root_target_means_not_available() {
    let dot = || vec![srv(0, 0, 0, ".")];
    let (mut rng, _) = scripted(&[]);
    // Both names say ".": nowhere to go, and no fallback.
    assert_eq!(plan("example.org", 5269, dot(), dot(), &mut rng), vec![]);
    // STARTTLS refused and no direct TLS: the fallback is STARTTLS, so none.
    assert_eq!(plan("example.org", 5269, vec![], dot(), &mut rng), vec![]);
    // Only direct TLS refused: the STARTTLS fallback stands.
    assert_eq!(
        plan("example.org", 5269, dot(), vec![], &mut rng),
        vec![Target {
            host: "example.org".into(),
            port: 5269,
            direct_tls: false,
        }]
    );
    // One kind refused, the other offered: the offered one.
    assert_eq!(
        plan(
            "example.org",
            5269,
            dot(),
            vec![srv(5, 0, 5269, "xmpp.example.org")],
            &mut rng
        ),
        vec![Target {
            host: "xmpp.example.org".into(),
            port: 5269,
            direct_tls: false,
        }]
    );
    assert_eq!(
        plan(
            "example.org",
            5269,
            vec![srv(5, 0, 5270, "tls.example.org")],
            dot(),
            &mut rng
        ),
        vec![Target {
            host: "tls.example.org".into(),
            port: 5270,
            direct_tls: true,
        }]
    );
}

#[test]
fn both_kinds_merged_by_priority_and_weight() {
    let direct = vec![
        srv(10, 0, 5270, "tls.example.org"),
        srv(30, 0, 5270, "late.example.org"),
    ];
    let starttls = vec![
        srv(20, 0, 5269, "plain.example.org"),
        srv(10, 50, 5269, "heavy.example.org"),
        // "." among real records, and port 0: skipped.
        srv(1, 0, 5269, "."),
        srv(1, 0, 0, "zero-port.example.org"),
    ];
    // Priority 10 holds tls (weight 0, placed first) and heavy (weight
    // 50): 7 picks heavy, then 0 picks tls.
    let (mut rng, _) = scripted(&[7, 0]);
    let targets = plan("example.org", 5269, direct, starttls, &mut rng);
    let summary: Vec<(&str, u16, bool)> = targets
        .iter()
        .map(|t| (t.host.as_str(), t.port, t.direct_tls))
        .collect();
    assert_eq!(
        summary,
        [
            ("heavy.example.org", 5269, false),
            ("tls.example.org", 5270, true),
            ("plain.example.org", 5269, false),
            ("late.example.org", 5270, true),
        ]
    );
}

#[test]
fn duplicates_removed() {
    let starttls = vec![srv(0, 0, 5269, "a.example"), srv(1, 0, 5269, "a.example")];
    let direct = vec![srv(0, 0, 5269, "a.example")];
    let (mut rng, _) = scripted(&[]);
    let targets = plan("example", 5269, direct, starttls, &mut rng);
    assert_eq!(targets.len(), 2);
    assert!(targets[0].direct_tls);
    assert!(!targets[1].direct_tls);
}

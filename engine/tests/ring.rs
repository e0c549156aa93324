//! The placement rules of `dsync_engine::ring`, checked from outside the
//! crate on the key counts the issue names: 100,000 keys and 100 virtual
//! nodes per member.
//!
//! - Balance: each member is primary for its fair share, within ±10%.
//! - Minimal movement: a join moves keys only to the newcomer, and a leave
//!   moves only the leaver's keys. Replica lists change only by that member.
//! - Shape: replicas are distinct, `min(n, members)` long and led by the
//!   primary, and they do not depend on the order members were listed in.
//! - Definition: the fast lookup agrees with a brute-force reading of the
//!   module docs.
//!
//! Each test prints what it measured. `cargo test --test ring -- --nocapture`
//! shows the figures quoted in the ring's docs.

use std::collections::BTreeMap;

use dsync_engine::ring::{Ring, PROBES};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

const KEYS: usize = 100_000;
/// The balance rule from the issue: every member within ±10% of the mean.
const BALANCE_TOLERANCE: f64 = 0.10;

fn names(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

fn keys() -> impl Iterator<Item = String> {
    (0..KEYS).map(|i| format!("queue-{i}"))
}

/// Keys owned (as primary) by each member.
fn primary_counts(ring: &Ring) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = ring.members().map(|m| (m.to_owned(), 0)).collect();
    for key in keys() {
        *counts.get_mut(ring.primary(&key).expect("ring has members")).expect("primary is a member") += 1;
    }
    counts
}

/// Largest relative deviation of any member's count from the mean.
fn worst_deviation(counts: &BTreeMap<String, usize>) -> f64 {
    let mean = KEYS as f64 / counts.len() as f64;
    counts.values().map(|&c| (c as f64 - mean).abs() / mean).fold(0.0, f64::max)
}

fn assert_balanced(members: &[String]) {
    let ring = Ring::new(members.iter().cloned(), Ring::DEFAULT_VNODES);
    let counts = primary_counts(&ring);
    let worst = worst_deviation(&counts);
    println!("{} members: worst {:.1}% off the mean; primary counts {counts:?}", members.len(), worst * 100.0);
    assert!(worst <= BALANCE_TOLERANCE, "{} members: worst member {:.1}% off the mean", members.len(), worst * 100.0);
}

#[test]
fn each_member_is_primary_for_its_fair_share_within_10_percent() {
    for n in [3, 5, 7] {
        assert_balanced(&names("node", n));
    }
}

/// The rule must hold because of how the ring places keys, not because the
/// cluster's own `nodeN` names happen to hash well. So check other naming
/// schemes too.
#[test]
fn balance_holds_whatever_the_members_are_called() {
    for prefix in ["n", "member-", "10.0.0.", "dsync-eu-west-"] {
        for n in [3, 5, 7] {
            assert_balanced(&names(prefix, n));
        }
    }
}

#[test]
fn a_joining_member_takes_keys_only_for_itself() {
    let before = Ring::new(names("node", 3), Ring::DEFAULT_VNODES);
    let after = Ring::new(names("node", 4), Ring::DEFAULT_VNODES);
    let mut moved = 0;
    for key in keys() {
        let (old, new) = (before.primary(&key), after.primary(&key));
        if old != new {
            assert_eq!(new, Some("node4"), "key {key} moved from {old:?} to an old member");
            moved += 1;
        }
    }
    let fraction = moved as f64 / KEYS as f64;
    println!("3 -> 4 members: {moved} of {KEYS} keys moved ({:.2}%, fair share 25%)", fraction * 100.0);
    // The newcomer's share obeys the balance rule, so it is 1/4 ± 10%.
    let fair = 1.0 / 4.0;
    assert!((fraction - fair).abs() <= fair * BALANCE_TOLERANCE, "moved {:.2}% of keys", fraction * 100.0);
}

#[test]
fn a_leaving_member_gives_up_only_its_own_keys() {
    let before = Ring::new(names("node", 4), Ring::DEFAULT_VNODES);
    for leaver in before.members() {
        let after = Ring::new(before.members().filter(|&m| m != leaver), Ring::DEFAULT_VNODES);
        let mut moved = 0;
        for key in keys() {
            let (old, new) = (before.primary(&key), after.primary(&key));
            if old != new {
                assert_eq!(old, Some(leaver), "key {key} moved from {old:?}, which stayed");
                moved += 1;
            }
        }
        let fraction = moved as f64 / KEYS as f64;
        println!("4 -> 3 members without {leaver}: {moved} of {KEYS} keys moved ({:.2}%)", fraction * 100.0);
        let fair = 1.0 / 4.0;
        assert!((fraction - fair).abs() <= fair * BALANCE_TOLERANCE, "moved {:.2}% of keys", fraction * 100.0);
    }
}

/// Minimal movement for whole replica lists, not just the primary. Take a
/// 5-member ring and the 4-member ring without some member X. Dropping X from
/// a key's 5-member list must leave the start of its 4-member list. Read one
/// way, that is X joining (it only pushes into lists); read the other, X
/// leaving (the others only move up). Every X is tried, including ones whose
/// names sort between the others.
#[test]
fn replica_lists_change_only_by_the_member_that_joined_or_left() {
    let large = Ring::new(names("node", 5), Ring::DEFAULT_VNODES);
    for x in large.members() {
        let small = Ring::new(large.members().filter(|&m| m != x), Ring::DEFAULT_VNODES);
        let mut changed = 0;
        for key in keys().take(KEYS / 10) {
            let (with_x, without_x) = (large.replicas(&key, 3), small.replicas(&key, 3));
            let dropped: Vec<&str> = with_x.iter().copied().filter(|&m| m != x).collect();
            assert!(without_x.starts_with(&dropped), "{x}: key {key}: {without_x:?} vs {with_x:?}");
            changed += usize::from(with_x != without_x);
        }
        // X is in a 3-of-5 list for about 3/5 of keys; those are the lists that differ.
        println!("{x} joining 4 members: {changed} of {} replica lists (n = 3) changed", KEYS / 10);
    }
}

#[test]
fn replicas_are_distinct_members_led_by_the_primary() {
    let ring = Ring::new(names("node", 5), Ring::DEFAULT_VNODES);
    let members: Vec<&str> = ring.members().collect();
    for key in keys().take(2_000) {
        for n in 0..=members.len() + 2 {
            let replicas = ring.replicas(&key, n);
            assert_eq!(replicas.len(), n.min(members.len()), "key {key}, n {n}");
            let mut distinct = replicas.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), replicas.len(), "key {key}: repeated member in {replicas:?}");
            assert!(replicas.iter().all(|m| members.contains(m)), "key {key}: {replicas:?}");
            if n > 0 {
                assert_eq!(replicas.first().copied(), ring.primary(&key), "key {key}, n {n}");
            }
        }
        // A longer list extends a shorter one and never reorders it.
        assert!(ring.replicas(&key, 5).starts_with(&ring.replicas(&key, 3)), "key {key}");
    }
}

#[test]
fn placement_does_not_depend_on_member_order_or_repeats() {
    let sorted = Ring::new(["node1", "node2", "node3", "node4", "node5"], Ring::DEFAULT_VNODES);
    let shuffled = Ring::new(["node4", "node1", "node5", "node3", "node2", "node4"], Ring::DEFAULT_VNODES);
    assert_eq!(shuffled.members().collect::<Vec<_>>(), ["node1", "node2", "node3", "node4", "node5"]);
    for key in keys().take(10_000) {
        assert_eq!(sorted.replicas(&key, 3), shuffled.replicas(&key, 3), "key {key}");
    }
}

#[test]
fn an_empty_ring_places_nothing() {
    let ring = Ring::new(Vec::<String>::new(), Ring::DEFAULT_VNODES);
    assert_eq!(ring.members().count(), 0);
    assert_eq!(ring.primary("queue-0"), None);
    assert!(ring.replicas("queue-0", 3).is_empty());
}

#[test]
fn a_single_member_holds_every_key() {
    let ring = Ring::new(["node1"], Ring::DEFAULT_VNODES);
    for key in keys().take(1_000) {
        assert_eq!(ring.replicas(&key, 3), ["node1"]);
    }
}

/// The definition from the ring's docs, written the slow way. A member's
/// distance from a key is the smallest clockwise gap from any of the key's
/// `PROBES` hashes to any of the member's `"<member>#<i>"` points. Replicas
/// are the members ordered by (distance, name).
fn naive_replicas<'a>(members: &[&'a str], vnodes: u32, key: &str, n: usize) -> Vec<&'a str> {
    let mut by_distance: Vec<(u64, &str)> = members
        .iter()
        .map(|&member| {
            let distance = (0..PROBES)
                .flat_map(|seed| {
                    let probe = xxh3_64_with_seed(key.as_bytes(), seed);
                    (0..vnodes).map(move |i| xxh3_64(format!("{member}#{i}").as_bytes()).wrapping_sub(probe))
                })
                .min()
                .expect("vnodes > 0");
            (distance, member)
        })
        .collect();
    by_distance.sort_unstable();
    by_distance.into_iter().take(n).map(|(_, member)| member).collect()
}

#[test]
fn replicas_match_the_definition_computed_by_brute_force() {
    let members = ["node1", "node2", "node3", "node4", "node5", "node6", "node7"];
    let vnodes = 20;
    let ring = Ring::new(members, vnodes);
    for key in keys().take(500) {
        assert_eq!(ring.replicas(&key, 7), naive_replicas(&members, vnodes, &key, 7), "key {key}");
    }
}

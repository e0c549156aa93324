//! Consistent-hashing ring: which members should hold a queue (or any other
//! key), in preference order.
//!
//! Today there is one Raft group and every member replicates every queue, so
//! the ring only *reports* placement (`GET /queue/stats`). It is the map the
//! later split into several Raft groups will shard by, which is why it has to
//! meet two rules now rather than then:
//!
//! - **Balance.** With [`Ring::DEFAULT_VNODES`] virtual nodes per member, each
//!   member is the primary for its fair share of keys, within ±10%.
//! - **Minimal movement.** When a member joins, only keys that it takes over
//!   change hands. When a member leaves, only the keys it held move. The same
//!   holds for whole replica lists: a join only inserts the new member into
//!   some lists, and a leave only removes the departed one.
//!
//! # Placement
//!
//! Member `m` owns `vnodes` points on a 64-bit circle, at
//! `xxh3_64("m#0")`, `xxh3_64("m#1")`, ... A point depends on its member's
//! name alone. So a ring is a pure function of the member *set*: every node
//! that knows the same members computes the same placement, whatever the
//! order it learnt them in. That is also why joins and leaves move so little.
//! xxh3 is specified bit for bit and does not depend on endianness. std's
//! `DefaultHasher` may change between Rust releases, and `RandomState` is
//! seeded per process, so neither may be used here.
//!
//! # Why a key is hashed [`PROBES`] times
//!
//! The textbook ring hashes a key once and walks clockwise from that point.
//! With independently hashed points, though, a member's share is a sum of
//! `vnodes` random arc lengths, so its spread is about `1/sqrt(vnodes)`: 10%
//! at 100 vnodes. That is one standard deviation, so the ±10% rule would fail
//! for most clusters. Measured on 60 random sets of member names, the worst
//! member was off by a median of 15% at 7 members, and 54 of the 60 sets broke
//! the rule. Our own `node1..node3`, `node1..node5` and `node1..node7` come
//! out 13.5%, 14.8% and 22.7% off over 100,000 keys. Neither a hash seed nor a
//! different vnode label scheme changes the statistics. Stratifying the
//! points (one per 1/vnodes of the circle) left the spread much the same.
//! Spacing them along a per-member Kronecker sequence (`i·α mod 1`, with `α`
//! hashed from the name) made it worse.
//! Only 5 of 200 seeds happened to pass for 3, 5 and 7 members at once, and
//! that luck would not survive the next member to join.
//!
//! So the ring uses multi-probe consistent hashing (Appleton and O'Reilly,
//! 2015). Each key is hashed [`PROBES`] times, probe `j` being
//! `xxh3_64_with_seed(key, j)`. Probe 0 is plain `xxh3_64(key)`.
//! A member's *distance* from the key is the shortest clockwise distance from
//! any probe to any of that member's points. Replicas are the members ordered
//! by that distance (ties by name), and the primary is the closest. With
//! `PROBES = 1` this is exactly the textbook walk "the first distinct members
//! clockwise from the key's hash". With 8 probes, the worst member over the
//! same 60 name sets is off by 4.3% (median) and 7.7% (maximum) at 7 members,
//! and by at most 8.4% at 10 members.
//!
//! A member's distance depends only on the key and that member's own points.
//! Adding or removing other members therefore never reorders the rest, and
//! that is the minimal-movement rule for whole replica lists.
//!
//! A lookup costs [`PROBES`] hashes of the key plus [`PROBES`] binary searches
//! over `members × vnodes` sorted points, so `O(PROBES · log(members ·
//! vnodes))`. At 7 × 100 points that is about 80 comparisons.

use std::fmt;

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// How many times a key is hashed onto the ring. The module docs explain why
/// it is more than one. In those measurements, eight kept the worst member
/// within ±10% of the mean at 100 vnodes, for every name set tried with up to
/// 10 members. The cost is eight hashes and eight binary searches per lookup.
///
/// This constant, the vnode label format and the hash are all part of the
/// placement contract. Every member must agree on them, and changing any of
/// them moves nearly every key. The golden test in this file pins them.
pub const PROBES: u64 = 8;

/// A consistent-hashing ring over a set of named members. It maps each key to
/// its preferred members in order: the primary first, then the replicas.
///
/// Build it from the current member set. It never changes after that, and a
/// membership change builds a new one. This way a lookup needs no lock, and
/// two rings built from the same set always agree, whatever order their
/// members were listed in.
#[derive(Clone)]
pub struct Ring {
    /// Member names, sorted and free of duplicates. Indices into this vector
    /// are the member ids used in `points`. Because the order is by name,
    /// ties broken by index are also broken by name, and the result does not
    /// depend on how the caller listed the members.
    members: Vec<String>,
    /// Every virtual node as `(position, member index)`, sorted by position
    /// and then by member index. A lookup binary-searches this vector.
    points: Vec<(u64, usize)>,
    /// Virtual nodes per member. Only `Debug` uses it. `points.len()` is
    /// always `members.len() * vnodes`.
    vnodes: u32,
}

impl Ring {
    /// Virtual nodes per member for the cluster's ring: 100, as the issue
    /// asks. With [`PROBES`] probes this keeps every member within ±10% of
    /// its fair share. Memory is `members × 100 × 16` bytes, about 11 KiB
    /// for 7 members.
    pub const DEFAULT_VNODES: u32 = 100;

    /// Builds the ring for `members`, with `vnodes` virtual nodes each.
    ///
    /// The input order and any repeated names make no difference, so callers
    /// can pass membership straight from Raft or from config. Members are
    /// plain strings (in the cluster, node names such as `node3`), which keeps
    /// the ring free of engine types.
    ///
    /// # Panics
    ///
    /// Panics if `vnodes` is 0. A member without points could never be chosen,
    /// so this is a programming error and not a setting to tolerate.
    pub fn new(members: impl IntoIterator<Item = impl Into<String>>, vnodes: u32) -> Ring {
        assert!(vnodes > 0, "a ring needs at least one virtual node per member");
        let mut members: Vec<String> = members.into_iter().map(Into::into).collect();
        members.sort_unstable();
        members.dedup();

        let mut points = Vec::with_capacity(members.len() * vnodes as usize);
        for (index, member) in members.iter().enumerate() {
            for vnode in 0..vnodes {
                points.push((vnode_point(member, vnode), index));
            }
        }
        // (position, index) order puts colliding positions in name order,
        // which is the deterministic tie-break. A collision has a chance of
        // about 2^-64 per pair, but it must not make two nodes disagree.
        points.sort_unstable();
        Ring { members, points, vnodes }
    }

    /// The members, sorted by name. This is the order that placement ties
    /// are broken in, and it lets callers show the ring without sorting.
    pub fn members(&self) -> impl Iterator<Item = &str> + '_ {
        self.members.iter().map(String::as_str)
    }

    /// The members that should hold `key`, in preference order. The first is
    /// the primary and the rest are its replicas.
    ///
    /// Returns `min(n, members)` distinct members, or none for an empty ring.
    /// Members are ordered by their distance from the key (see the module
    /// docs), so a membership change can only insert a newcomer into the list
    /// or remove a departed member. It never reorders the rest.
    pub fn replicas(&self, key: &str, n: usize) -> Vec<&str> {
        let n = n.min(self.members.len());
        let mut chosen = Vec::with_capacity(n);
        if n == 0 {
            return chosen;
        }
        // One clockwise cursor per probe. Each step takes the point nearest
        // its own probe across all cursors, so points come out in order of
        // distance, and the first time a member shows up is at its distance.
        // No cursor can go all the way round the circle: a full turn visits
        // every member, and the loop stops once n <= members are found.
        let mut cursors: Vec<Cursor> = probes(key).map(|probe| Cursor { probe, at: self.first_at(probe) }).collect();
        let mut seen = vec![false; self.members.len()];
        while chosen.len() < n {
            let best = (0..cursors.len()).min_by_key(|&c| self.rank(&cursors[c])).expect("PROBES > 0");
            let member = self.points[cursors[best].at].1;
            if !seen[member] {
                seen[member] = true;
                chosen.push(self.members[member].as_str());
            }
            cursors[best].at = (cursors[best].at + 1) % self.points.len();
        }
        chosen
    }

    /// The preferred primary for `key`, or `None` for an empty ring. It is
    /// always the first of `replicas(key, n)` for any `n >= 1`. It exists
    /// apart from `replicas` so that callers needing only the primary (such as
    /// request routing) skip the walk and its allocations.
    pub fn primary(&self, key: &str) -> Option<&str> {
        if self.points.is_empty() {
            return None;
        }
        let (_, member) = probes(key).map(|probe| self.rank(&Cursor { probe, at: self.first_at(probe) })).min()?;
        Some(self.members[member].as_str())
    }

    /// Index of the first point at or clockwise after `position`, wrapping
    /// past the top of the circle. The ring must not be empty.
    fn first_at(&self, position: u64) -> usize {
        let at = self.points.partition_point(|&(point, _)| point < position);
        if at == self.points.len() {
            0
        } else {
            at
        }
    }

    /// The order in which cursors are consumed: clockwise distance from the
    /// cursor's probe to its point, then member index (name order), so equal
    /// distances are settled the same way on every node.
    fn rank(&self, cursor: &Cursor) -> (u64, usize) {
        let (point, member) = self.points[cursor.at];
        (point.wrapping_sub(cursor.probe), member)
    }
}

impl fmt::Debug for Ring {
    /// A summary and not the raw points. A 7-member ring has 700 of them,
    /// which would flood any log line that prints cluster state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("members", &self.members)
            .field("vnodes", &self.vnodes)
            .field("points", &self.points.len())
            .finish()
    }
}

/// A walk clockwise from one probe: `at` indexes `Ring::points`.
struct Cursor {
    probe: u64,
    at: usize,
}

/// Position of virtual node `vnode` of `member`: `xxh3_64("<member>#<vnode>")`.
/// The decimal suffix contains no `#`, so the label splits at its last `#` in
/// only one way, and two (member, vnode) pairs never share a label.
fn vnode_point(member: &str, vnode: u32) -> u64 {
    xxh3_64(format!("{member}#{vnode}").as_bytes())
}

/// The key's [`PROBES`] positions. Probe `j` is hashed with seed `j`, and
/// seed 0 is the same as unseeded `xxh3_64`.
fn probes(key: &str) -> impl Iterator<Item = u64> + '_ {
    (0..PROBES).map(move |seed| xxh3_64_with_seed(key.as_bytes(), seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("node{i}")).collect()
    }

    /// Placement is a contract between processes and releases. Any change to
    /// the hash, the vnode labels, the probe count or the tie-break must fail
    /// here and not silently reshuffle a live cluster.
    #[test]
    fn placement_is_pinned_across_processes_and_releases() {
        assert_eq!(vnode_point("node1", 0), xxh3_64(b"node1#0"));
        assert_eq!(xxh3_64(b"node1#0"), 0x2981_5960_04d2_481d);
        assert_eq!(probes("queue-1").next(), Some(xxh3_64(b"queue-1")));
        let ring = Ring::new(nodes(5), Ring::DEFAULT_VNODES);
        let golden: Vec<(&str, Vec<&str>)> = vec![
            ("queue-0", vec!["node5", "node3", "node1"]),
            ("queue-1", vec!["node3", "node1", "node4"]),
            ("orders", vec!["node4", "node1", "node5"]),
            ("", vec!["node1", "node5", "node2"]),
        ];
        for (key, want) in golden {
            assert_eq!(ring.replicas(key, 3), want, "key {key:?}");
        }
    }

    /// When two members have points at the same position, the member that
    /// sorts first by name wins. An xxh3 collision cannot be produced on
    /// demand, so the colliding points are placed by hand.
    #[test]
    fn colliding_points_are_broken_by_member_name() {
        let mut ring = Ring::new(["b", "a"], 1);
        ring.points = vec![(100, 0), (100, 1)];
        for key in ["x", "y", "z"] {
            assert_eq!(ring.replicas(key, 2), ["a", "b"], "key {key}");
            assert_eq!(ring.primary(key), Some("a"));
        }
    }

    /// A walk that starts past the last point continues at the first. Without
    /// that wrap, keys that hash above every point would have no owner.
    #[test]
    fn lookups_wrap_around_the_top_of_the_circle() {
        let ring = Ring::new(["a"], 1);
        let only = ring.points[0].0;
        assert_eq!(ring.first_at(only), 0);
        assert_eq!(ring.first_at(only.wrapping_add(1)), 0);
        assert_eq!(ring.first_at(u64::MAX), 0);
        assert_eq!(ring.primary("anything"), Some("a"));
    }

    #[test]
    fn debug_summarises_instead_of_dumping_points() {
        let shown = format!("{:?}", Ring::new(nodes(7), Ring::DEFAULT_VNODES));
        assert!(shown.contains("points: 700"), "{shown}");
        assert!(shown.len() < 200, "{shown}");
    }

    #[test]
    #[should_panic(expected = "at least one virtual node")]
    fn zero_vnodes_is_a_programming_error() {
        let _ = Ring::new(["a"], 0);
    }
}

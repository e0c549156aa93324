//! Free TCP ports for the nodes a test starts.
//!
//! Why not simply bind port 0: the kernel picks port-0 ports from the
//! ephemeral range, the same range it uses for the local end of outgoing
//! connections, including the nodes' own peer RPCs and forwarded writes.
//! A port picked and released there can be taken by such a connection before
//! the node binds it, and the node then fails to start. Ports below the
//! ephemeral range are never given to outgoing connections, so we pick there,
//! check that the port binds right now, and never hand the same port out twice
//! in one test process (tests run in parallel threads).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// How many ports below the ephemeral range we are willing to use.
const SPAN_PORTS_MAX: u16 = 20_000;

/// Lowest port we ever use: keeps clear of well-known and registered
/// services (8000-8100, where a developer's manual cluster may be running).
const FLOOR_PORT: u16 = 10_000;

/// Ports handed out so far by this process, and where the next scan starts.
struct Allocator {
    handed_out: BTreeSet<u16>,
    cursor: Option<u32>,
}

static ALLOCATOR: Mutex<Allocator> = Mutex::new(Allocator { handed_out: BTreeSet::new(), cursor: None });

/// Returns a port on 127.0.0.1 that binds right now, lies below the kernel's
/// ephemeral range (see the module doc), and was not returned before by this
/// process. Falls back to a port-0 port if the range below is too small.
pub fn free_port() -> u16 {
    let (ephemeral_low, _) = ephemeral_range();
    let floor = FLOOR_PORT.max(ephemeral_low.saturating_sub(SPAN_PORTS_MAX));
    let mut allocator = ALLOCATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if ephemeral_low <= floor + 1_000 {
        return kernel_port(&mut allocator);
    }
    let span = u32::from(ephemeral_low - floor);
    // Start at a place that differs between processes, so that two test
    // processes on one machine (a developer and CI) rarely scan the same ports.
    let start = *allocator.cursor.get_or_insert_with(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        (std::process::id().wrapping_mul(7_919) ^ nanos) % span
    });
    for step in 0..span {
        let offset = (start + step) % span;
        let port = floor + u16::try_from(offset).expect("offset is below a u16 span");
        if allocator.handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            allocator.handed_out.insert(port);
            allocator.cursor = Some((offset + 1) % span);
            return port;
        }
    }
    panic!("no free TCP port on 127.0.0.1 between {floor} and {ephemeral_low}");
}

/// A port chosen by the kernel (bind port 0), not handed out before.
fn kernel_port(allocator: &mut Allocator) -> u16 {
    loop {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr of a bound socket").port();
        if allocator.handed_out.insert(port) {
            return port;
        }
    }
}

/// The kernel's ephemeral port range, `(low, high)`; Linux's default if unknown.
fn ephemeral_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut numbers = text.split_whitespace().filter_map(|n| n.parse::<u16>().ok());
    match (numbers.next(), numbers.next()) {
        (Some(low), Some(high)) if low <= high => (low, high),
        _ => (32_768, 60_999),
    }
}

//! statsd packets for the statsd benches (`benches/collect_statsd.rs`) and the load program
//! (`src/bin/statsd-load.rs`), generated from a seed: what statsd clients send (dotted keys,
//! counters with and without sample rates, timers, gauges, sets), over a fixed number of
//! distinct keys.

use crate::Rng;

/// One statsd line for key number `key` (of the metric types in statsd's usual mix: half
/// counters, a quarter timers, gauges and sets).
fn line(out: &mut String, key: u64, r: u64) {
    use std::fmt::Write as _;
    let service = ["api", "web", "db", "cache"][(key % 4) as usize];
    let _ = match r % 8 {
        0..=2 => write!(out, "{service}.host{:03}.requests.k{key}:1|c", key % 97),
        3 => write!(out, "{service}.host{:03}.errors.k{key}:1|c|@0.1", key % 97),
        4 | 5 => {
            write!(out, "{service}.host{:03}.latency.k{key}:{}.{}|ms", key % 97, r % 900, r % 10)
        }
        6 => write!(out, "{service}.host{:03}.pool.k{key}:{}|g", key % 97, r % 50),
        _ => write!(out, "{service}.host{:03}.users.k{key}:u{}|s", key % 97, r % 5000),
    };
}

/// `count` packets over `keys` distinct keys, each of `lines` lines (one line is what most
/// clients send per datagram; batching clients fill ~1400 bytes).
pub fn packets(count: usize, lines: usize, keys: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(count);
    let mut text = String::new();
    for _ in 0..count {
        text.clear();
        for i in 0..lines.max(1) {
            if i > 0 {
                text.push('\n');
            }
            let r = rng.next_u64();
            line(&mut text, (r >> 20) % keys.max(1), r);
        }
        out.push(text.as_bytes().to_vec());
    }
    out
}

//! Plaintext UDP: each datagram holds one or more lines.

use std::net::SocketAddr;

use carbon_proto::plaintext::decode_datagram_batch;
use tokio::net::UdpSocket;

use super::{Ctx, ListenerStats, RawPoint, excerpt};

/// Largest UDP payload.
const DATAGRAM_BYTES: usize = 65_536;

pub(crate) async fn serve(socket: UdpSocket, ctx: Ctx) {
    let mut buf = vec![0u8; DATAGRAM_BYTES];
    loop {
        // A full sink cannot push back on UDP senders; while it is full, datagrams wait in
        // the socket's receive buffer (and the kernel drops what does not fit, counted in
        // /proc/net/snmp as it is for carbon).
        if !ctx.wait_for_room().await {
            return;
        }
        let (n, peer): (usize, SocketAddr) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
            () = ctx.shutdown.cancelled() => return,
        };
        let datagram = buf.get(..n).unwrap_or_default();
        let mut lines = Vec::new();
        decode_datagram_batch(datagram, &mut lines, |bad| {
            ListenerStats::add(&ctx.stats.bad_lines, 1);
            tracing::debug!(%peer, error = %bad.error, line = %excerpt(bad.line), "invalid line received, ignoring");
        });
        let points: Vec<RawPoint<'_>> = lines
            .iter()
            .map(|l| RawPoint { name: l.name, timestamp: l.timestamp, value: l.value })
            .collect();
        ctx.ingest(&points);
    }
}

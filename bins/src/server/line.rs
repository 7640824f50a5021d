//! Plaintext TCP connections.

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use carbon_proto::plaintext::{BadLine, LineDecoder};
use tokio::net::TcpStream;

use super::{Ctx, ListenerStats, RawPoint, excerpt, read_some};

pub(crate) async fn serve(mut stream: TcpStream, peer: SocketAddr, ctx: &Ctx) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(super::READ_BYTES);
    let mut decoder = LineDecoder::with_max_line(ctx.limits.max_line);
    loop {
        if !ctx.wait_for_room().await {
            return Ok(());
        }
        match read_some(&mut stream, &mut buf, ctx).await? {
            // Shutdown: complete lines were already handed on; a partial one is dropped.
            None => return Ok(()),
            Some(0) => {
                decoder.decode_eof(&mut buf, |r| match r {
                    Ok(l) => ctx.ingest(&[RawPoint {
                        name: l.name,
                        timestamp: l.timestamp,
                        value: l.value,
                    }]),
                    Err(bad) => report(ctx, peer, &bad),
                });
                return Ok(());
            }
            Some(_) => {
                let used = {
                    let mut lines = Vec::new();
                    let used =
                        decoder.decode_batch(&buf, &mut lines, |bad| report(ctx, peer, &bad));
                    let points: Vec<RawPoint<'_>> = lines
                        .iter()
                        .map(|l| RawPoint { name: l.name, timestamp: l.timestamp, value: l.value })
                        .collect();
                    ctx.ingest(&points);
                    used
                };
                buf.advance(used);
            }
        }
    }
}

fn report(ctx: &Ctx, peer: SocketAddr, bad: &BadLine<'_>) {
    ListenerStats::add(&ctx.stats.bad_lines, 1);
    tracing::debug!(%peer, error = %bad.error, line = %excerpt(bad.line), "invalid line received, ignoring");
}

//! Pickle TCP connections: 4-byte length + pickled list of `(path, (timestamp, value))`.

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use carbon_proto::pickle::{FrameDecoder, PickleError, Unpickler};
use tokio::net::TcpStream;

use super::{Ctx, ListenerStats, RawPoint, read_some};

pub(crate) async fn serve(mut stream: TcpStream, peer: SocketAddr, ctx: &Ctx) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(super::READ_BYTES);
    let mut frames = FrameDecoder::with_max_length(ctx.limits.max_pickle_frame);
    let mut unpickler = Unpickler::new();
    loop {
        if !ctx.wait_for_room().await {
            return Ok(());
        }
        let read = read_some(&mut stream, &mut buf, ctx).await?;
        let eof = matches!(read, None | Some(0));
        loop {
            let frame = if eof { frames.decode_eof(&mut buf) } else { frames.decode(&mut buf) };
            match frame {
                Ok(Some(payload)) => handle_frame(&payload, &mut unpickler, peer, ctx),
                Ok(None) => break,
                Err(e) => {
                    // carbon closes the connection on an oversized frame; the frame decoder
                    // skips it instead, so only that frame is lost.
                    ListenerStats::add(&ctx.stats.bad_frames, 1);
                    tracing::debug!(%peer, error = %e, "invalid pickle frame, ignoring");
                    if matches!(e, PickleError::TruncatedFrame { .. }) || eof {
                        break;
                    }
                }
            }
        }
        if eof {
            return Ok(());
        }
    }
}

fn handle_frame(payload: &[u8], unpickler: &mut Unpickler, peer: SocketAddr, ctx: &Ctx) {
    match unpickler.decode_datapoints(payload) {
        Ok(decoded) => {
            if !decoded.skipped.is_empty() {
                ListenerStats::add(&ctx.stats.bad_items, decoded.skipped.len() as u64);
                tracing::debug!(%peer, skipped = ?decoded.skipped_by_kind(), "pickle items skipped");
            }
            let points: Vec<RawPoint<'_>> = decoded.points.iter().map(RawPoint::from).collect();
            ctx.ingest(&points);
        }
        Err(e) => {
            ListenerStats::add(&ctx.stats.bad_frames, 1);
            tracing::debug!(%peer, error = %e, "invalid pickle received, ignoring");
        }
    }
}

//! The cache-query port (7002): graphite-web's CarbonLink asks for cached points.

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use carbon_proto::Datapoint;
use carbon_proto::cache_query::{
    Request, Timestamps, encode_bulk_response, encode_datapoints_response, encode_error_response,
    encode_metadata_response, encode_set_metadata_response, invalid_request_type_message,
};
use carbon_proto::pickle::{FrameDecoder, Unpickler, Value, encode_frame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{Ctx, ListenerStats, read_some};

pub(crate) async fn serve(mut stream: TcpStream, peer: SocketAddr, ctx: &Ctx) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(4096);
    let mut frames = FrameDecoder::with_max_length(ctx.limits.max_query_frame);
    let mut unpickler = Unpickler::new();
    let mut out = Vec::new();
    loop {
        let read = read_some(&mut stream, &mut buf, ctx).await?;
        if matches!(read, None | Some(0)) {
            return Ok(());
        }
        loop {
            let payload = match frames.decode(&mut buf) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    ListenerStats::add(&ctx.stats.bad_queries, 1);
                    tracing::debug!(%peer, error = %e, "invalid cache query frame");
                    let mut response = Vec::new();
                    encode_error_response(&mut response, &e.to_string());
                    send(&mut stream, &response, &mut out).await?;
                    continue;
                }
            };
            // Answered in place: a cache lookup takes microseconds, and handing the worker
            // over (`block_in_place`) costs more than that under load (the task then waits
            // to get a worker back, which showed as millisecond tails during ingest). Only
            // the metadata requests touch a file: one small read or write.
            let response = answer(&payload, &mut unpickler, peer, ctx);
            send(&mut stream, &response, &mut out).await?;
        }
    }
}

async fn send(stream: &mut TcpStream, response: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    encode_frame(out, response)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    stream.write_all(out).await
}

/// Answers one request as carbon's `CacheManagementHandler` does.
fn answer(payload: &[u8], unpickler: &mut Unpickler, peer: SocketAddr, ctx: &Ctx) -> Vec<u8> {
    let mut out = Vec::new();
    let request = match Request::decode_with(unpickler, payload) {
        Ok(r) => r,
        Err(e) => {
            // carbon's handler raises here and the connection dies; an error answer keeps
            // the client's connection usable.
            ListenerStats::add(&ctx.stats.bad_queries, 1);
            tracing::debug!(%peer, error = %e, "invalid cache query");
            encode_error_response(&mut out, &e.to_string());
            return out;
        }
    };
    let to_datapoints = |points: Vec<(u32, f64)>| -> Vec<Datapoint> {
        points.into_iter().map(|(t, v)| Datapoint::new(f64::from(t), v)).collect()
    };
    match request {
        Request::CacheQuery { metric } => {
            ListenerStats::add(&ctx.stats.cache_queries, 1);
            let points = to_datapoints(ctx.cache.cache_points(&metric));
            encode_datapoints_response(&mut out, &points, Timestamps::Int);
        }
        Request::CacheQueryBulk { metrics } => {
            ListenerStats::add(&ctx.stats.bulk_queries, 1);
            ListenerStats::add(&ctx.stats.bulk_query_metrics, metrics.len() as u64);
            let answers: Vec<(String, Vec<Datapoint>)> = metrics
                .iter()
                .map(|m| (m.clone(), to_datapoints(ctx.cache.cache_points(m))))
                .collect();
            encode_bulk_response(
                &mut out,
                answers.iter().map(|(m, p)| (m.as_str(), p.as_slice())),
                Timestamps::Int,
            );
        }
        Request::GetMetadata { metric, key } => match ctx.cache.get_metadata(&metric, &key) {
            Ok(value) => encode_metadata_response(&mut out, &Value::Str(value.into())),
            Err(e) => encode_error_response(&mut out, &e),
        },
        Request::SetMetadata { metric, key, value } => {
            let Some(text) = value.as_str() else {
                encode_error_response(
                    &mut out,
                    &format!("Unrecognized aggregation method: {value:?}"),
                );
                return out;
            };
            match ctx.cache.set_metadata(&metric, &key, text) {
                Ok(old) => encode_set_metadata_response(&mut out, &Value::Str(old.into()), &value),
                Err(e) => encode_error_response(&mut out, &e),
            }
        }
        Request::Unknown { request_type } => {
            encode_error_response(&mut out, &invalid_request_type_message(&request_type));
        }
        _ => encode_error_response(&mut out, "unsupported request"),
    }
    out
}

//! Framing: a 4-byte big-endian length, then that many bytes of pickle (Twisted's
//! `Int32StringReceiver`, which carbon's pickle receiver, its cache-query handler and
//! graphite-web's CarbonLink all use).
#![warn(clippy::indexing_slicing)]

use bytes::{Buf, Bytes, BytesMut};

use super::PickleError;

/// carbon's default `PICKLE_RECEIVER_MAX_LENGTH`: the longest frame its pickle receiver
/// accepts (1 MiB).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Bytes of the length prefix.
pub const FRAME_HEADER_BYTES: usize = 4;

/// At most this much room is reserved ahead for a partial frame.
const RESERVE_BYTES: usize = 64 * 1024;

/// Cuts length-prefixed frames out of a TCP stream.
///
/// Feed it the connection's buffer after every read; each call to [`decode`](Self::decode)
/// takes at most one complete frame off the front. Memory is bounded by the limit: a frame
/// whose declared length is over it is reported as [`PickleError::FrameTooLong`] as soon as
/// its header arrives, before any of its body is buffered.
///
/// # An oversized frame
///
/// carbon closes the connection (Twisted's `lengthLimitExceeded`), and so should the caller in
/// most cases: a huge length usually means the peer is not speaking pickle at all (plaintext
/// sent to port 2004 reads as a length of about a gigabyte). A caller that prefers to go on
/// just keeps calling `decode`: after the error the decoder drops the frame's body as it
/// arrives, without buffering it, and then decodes the next frame.
///
/// ```
/// use bytes::BytesMut;
/// use carbon_proto::pickle::{FrameDecoder, PickleError};
///
/// let mut decoder = FrameDecoder::with_max_length(8);
/// let mut buf = BytesMut::from(&b"\x00\x00\x00\x02hi\x00\x00\x00\x09too long!\x00\x00"[..]);
/// assert_eq!(decoder.decode(&mut buf)?.as_deref(), Some(&b"hi"[..]));
/// assert_eq!(decoder.decode(&mut buf), Err(PickleError::FrameTooLong { length: 9, max: 8 }));
/// assert_eq!(decoder.decode(&mut buf)?, None); // skipped "too long!", waits for a header
/// # Ok::<(), PickleError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_length: usize,
    /// Bytes of an oversized frame still to drop.
    skipping: u64,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder with carbon's pickle limit, [`MAX_FRAME_BYTES`].
    pub fn new() -> FrameDecoder {
        FrameDecoder::with_max_length(MAX_FRAME_BYTES)
    }

    /// A decoder that accepts frames of up to `max_length` bytes (carbon's
    /// `PICKLE_RECEIVER_MAX_LENGTH`).
    pub fn with_max_length(max_length: usize) -> FrameDecoder {
        FrameDecoder { max_length, skipping: 0 }
    }

    /// The limit.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Whether it is dropping the body of an oversized frame.
    pub fn is_skipping(&self) -> bool {
        self.skipping > 0
    }

    /// Takes one complete frame's payload off the front of `buf`; `Ok(None)` when `buf` does
    /// not hold a complete frame yet (it then reserves room for more of it, up to 64 KiB).
    ///
    /// # Errors
    ///
    /// [`PickleError::FrameTooLong`] when a frame's header declares more than the limit; its
    /// header is consumed and its body will be dropped by the next calls.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, PickleError> {
        if self.skipping > 0 {
            let n = usize::try_from(self.skipping).unwrap_or(usize::MAX).min(buf.len());
            buf.advance(n);
            self.skipping -= n as u64;
            if self.skipping > 0 {
                return Ok(None);
            }
        }
        let Some(header) = buf.get(..FRAME_HEADER_BYTES) else {
            return Ok(None);
        };
        let mut len_bytes = [0u8; FRAME_HEADER_BYTES];
        len_bytes.copy_from_slice(header);
        let length = u32::from_be_bytes(len_bytes);
        let len = length as usize;
        if len > self.max_length {
            buf.advance(FRAME_HEADER_BYTES);
            self.skipping = u64::from(length);
            return Err(PickleError::FrameTooLong {
                length: u64::from(length),
                max: self.max_length,
            });
        }
        let total = FRAME_HEADER_BYTES + len;
        if buf.len() < total {
            // Room for the next part of the frame, not all of it: a header alone should not
            // make a connection hold the whole limit.
            buf.reserve((total - buf.len()).min(RESERVE_BYTES));
            return Ok(None);
        }
        buf.advance(FRAME_HEADER_BYTES);
        Ok(Some(buf.split_to(len).freeze()))
    }

    /// At end of stream: the next complete frame if there is one, `Ok(None)` if `buf` is
    /// empty.
    ///
    /// # Errors
    ///
    /// [`PickleError::TruncatedFrame`] if the stream ended inside a frame (which carbon drops
    /// silently); `buf` is then emptied.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, PickleError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if buf.is_empty() && self.skipping == 0 {
            return Ok(None);
        }
        let received = buf.len() as u64;
        let expected = if self.skipping > 0 {
            self.skipping
        } else {
            match buf.get(..FRAME_HEADER_BYTES) {
                Some(h) => {
                    let mut b = [0u8; FRAME_HEADER_BYTES];
                    b.copy_from_slice(h);
                    u64::from(u32::from_be_bytes(b)) + FRAME_HEADER_BYTES as u64
                }
                None => FRAME_HEADER_BYTES as u64,
            }
        };
        buf.clear();
        self.skipping = 0;
        Err(PickleError::TruncatedFrame { expected, received })
    }
}

/// Appends `payload` with its 4-byte big-endian length to `out`.
///
/// # Errors
///
/// [`PickleError::PayloadTooLong`] if the payload is 4 GiB or more (the length cannot say it).
pub fn encode_frame(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), PickleError> {
    let len = u32::try_from(payload.len())
        .map_err(|_| PickleError::PayloadTooLong { length: payload.len() })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends a frame whose payload `encode` appends to `out`, without copying it: writes a
/// placeholder header, runs `encode`, then fills the header in.
///
/// ```
/// use carbon_proto::pickle::{encode_datapoints_into, framed};
/// let mut out = Vec::new();
/// framed(&mut out, |out| encode_datapoints_into(out, []))?;
/// assert_eq!(out, b"\x00\x00\x00\x06\x80\x02]q\x00.");
/// # Ok::<(), carbon_proto::pickle::PickleError>(())
/// ```
///
/// # Errors
///
/// [`PickleError::PayloadTooLong`] if the payload is 4 GiB or more; `out` is then restored.
pub fn framed<F>(out: &mut Vec<u8>, encode: F) -> Result<(), PickleError>
where
    F: FnOnce(&mut Vec<u8>),
{
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    encode(out);
    let length = out.len() - start - FRAME_HEADER_BYTES;
    let Ok(len) = u32::try_from(length) else {
        out.truncate(start);
        return Err(PickleError::PayloadTooLong { length });
    };
    if let Some(header) = out.get_mut(start..start + FRAME_HEADER_BYTES) {
        header.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_arrive_in_pieces() {
        let mut d = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut stream = Vec::new();
        encode_frame(&mut stream, b"hello").unwrap();
        encode_frame(&mut stream, b"").unwrap();
        let mut frames = Vec::new();
        for &b in &stream {
            buf.extend_from_slice(&[b]);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames, [&b"hello"[..], &b""[..]]);
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_frames_are_refused_and_skipped_without_buffering() {
        let mut d = FrameDecoder::with_max_length(4);
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x0a01234"[..]);
        assert_eq!(d.decode(&mut buf), Err(PickleError::FrameTooLong { length: 10, max: 4 }));
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(buf.is_empty() && d.is_skipping());
        buf.extend_from_slice(b"56789\x00\x00\x00\x01x");
        assert_eq!(d.decode(&mut buf).unwrap().as_deref(), Some(&b"x"[..]));
        assert!(!d.is_skipping());
    }

    #[test]
    fn a_stream_that_ends_inside_a_frame_is_an_error() {
        let mut d = FrameDecoder::new();
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x05abc"[..]);
        assert_eq!(
            d.decode_eof(&mut buf),
            Err(PickleError::TruncatedFrame { expected: 9, received: 7 })
        );
        assert!(buf.is_empty());
        let mut buf = BytesMut::from(&b"\x00\x00"[..]);
        assert_eq!(
            d.decode_eof(&mut buf),
            Err(PickleError::TruncatedFrame { expected: 4, received: 2 })
        );
        assert_eq!(d.decode_eof(&mut buf), Ok(None));
    }
}

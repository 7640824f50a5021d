//! The part of Redis's RESP2 protocol the Redis collector needs: encoding a command, and
//! decoding replies from a byte buffer (sans-I/O, so it is tested and fuzzed on bytes).
#![warn(clippy::indexing_slicing)]

/// The largest bulk string we accept. `INFO` is a few kilobytes; the cap keeps a wrong peer
/// (or a wrong port) from making us allocate without bound.
const MAX_BULK_BYTES: usize = 16 << 20;
/// The most elements of one array (`CONFIG GET` answers two).
const MAX_ARRAY_LEN: usize = 4096;
/// How deep arrays may nest.
const MAX_DEPTH: usize = 4;
/// The longest simple string, error or integer line.
const MAX_LINE_BYTES: usize = 64 << 10;

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...`.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n` bulk string; `None` is the null bulk `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*n` array; `None` is the null array `*-1`.
    Array(Option<Vec<Reply>>),
}

/// Appends `args` as a RESP array of bulk strings (how clients send commands).
pub(crate) fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes one reply at the start of `buf`: `Ok(Some((reply, bytes used)))`, or `Ok(None)`
/// while more bytes are needed.
///
/// # Errors
///
/// A description of bytes that are not RESP2 (an unknown type byte, a bad length, a size over
/// the caps): the peer is not Redis, or not sane.
pub(crate) fn decode(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    decode_at(buf, 0)
}

fn decode_at(buf: &[u8], depth: usize) -> Result<Option<(Reply, usize)>, String> {
    let Some(&kind) = buf.first() else { return Ok(None) };
    let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > MAX_LINE_BYTES {
            return Err("reply line too long".to_owned());
        }
        return Ok(None);
    };
    let line = buf.get(1..line_end).unwrap_or_default();
    let after = line_end + 2;
    let text = || String::from_utf8_lossy(line).into_owned();
    match kind {
        b'+' => Ok(Some((Reply::Simple(text()), after))),
        b'-' => Ok(Some((Reply::Error(text()), after))),
        b':' => {
            let n = parse_int(line)?;
            Ok(Some((Reply::Integer(n), after)))
        }
        b'$' => {
            let n = parse_int(line)?;
            if n == -1 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let n = usize::try_from(n).map_err(|_| format!("bad bulk length {n}"))?;
            if n > MAX_BULK_BYTES {
                return Err(format!("bulk string of {n} bytes is over the {MAX_BULK_BYTES} cap"));
            }
            let end = after + n;
            let Some(data) = buf.get(after..end) else { return Ok(None) };
            match buf.get(end..end + 2) {
                None => Ok(None),
                Some(b"\r\n") => Ok(Some((Reply::Bulk(Some(data.to_vec())), end + 2))),
                Some(_) => Err("bulk string not followed by CRLF".to_owned()),
            }
        }
        b'*' => {
            let n = parse_int(line)?;
            if n == -1 {
                return Ok(Some((Reply::Array(None), after)));
            }
            let n = usize::try_from(n).map_err(|_| format!("bad array length {n}"))?;
            if n > MAX_ARRAY_LEN {
                return Err(format!("array of {n} elements is over the {MAX_ARRAY_LEN} cap"));
            }
            if depth >= MAX_DEPTH {
                return Err("arrays nested too deep".to_owned());
            }
            let mut items = Vec::with_capacity(n);
            let mut at = after;
            for _ in 0..n {
                let rest = buf.get(at..).unwrap_or_default();
                match decode_at(rest, depth + 1)? {
                    Some((item, used)) => {
                        items.push(item);
                        at += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), at)))
        }
        other => Err(format!("not a RESP reply (type byte {other:#04x})")),
    }
}

fn parse_int(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("bad integer {:?}", String::from_utf8_lossy(line)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commands_encode_as_bulk_arrays() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"CONFIG", b"GET", b"maxmemory"]);
        assert_eq!(out, b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$9\r\nmaxmemory\r\n");
    }

    #[test]
    fn replies_decode_and_report_their_length() {
        assert_eq!(decode(b"+OK\r\nrest").unwrap(), Some((Reply::Simple("OK".into()), 5)));
        assert_eq!(decode(b"-ERR no\r\n").unwrap(), Some((Reply::Error("ERR no".into()), 9)));
        assert_eq!(decode(b":-3\r\n").unwrap(), Some((Reply::Integer(-3), 5)));
        assert_eq!(
            decode(b"$3\r\nabc\r\n").unwrap(),
            Some((Reply::Bulk(Some(b"abc".to_vec())), 9))
        );
        assert_eq!(decode(b"$-1\r\n").unwrap(), Some((Reply::Bulk(None), 5)));
        assert_eq!(decode(b"*0\r\n").unwrap(), Some((Reply::Array(Some(vec![])), 4)));
        let got = decode(b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n").unwrap().unwrap();
        assert_eq!(
            got.0,
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"maxmemory".to_vec())),
                Reply::Bulk(Some(b"0".to_vec()))
            ]))
        );
    }

    #[test]
    fn partial_replies_ask_for_more() {
        for partial in [&b""[..], b"+OK", b"$3\r\nab", b"$3\r\nabc", b"*2\r\n:1\r\n"] {
            assert_eq!(decode(partial).unwrap(), None, "{:?}", String::from_utf8_lossy(partial));
        }
    }

    #[test]
    fn garbage_and_oversize_are_errors() {
        assert!(decode(b"HTTP/1.1 400\r\n").is_err());
        assert!(decode(b"$abc\r\n").is_err());
        assert!(decode(b"$-2\r\n").is_err());
        assert!(decode(b"$99999999999\r\n").is_err());
        assert!(decode(b"*99999999\r\n").is_err());
        assert!(decode(b"$1\r\nabc").is_err());
        assert!(decode(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n").is_err());
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(Some((_, used))) = decode(&bytes) {
                prop_assert!(used <= bytes.len());
            }
        }

        #[test]
        fn bulk_strings_round_trip(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut raw = format!("${}\r\n", data.len()).into_bytes();
            raw.extend_from_slice(&data);
            raw.extend_from_slice(b"\r\n");
            prop_assert_eq!(decode(&raw).unwrap(), Some((Reply::Bulk(Some(data)), raw.len())));
        }
    }
}

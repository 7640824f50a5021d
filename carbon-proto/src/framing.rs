//! Newline framing for the line protocols (plaintext, OpenTSDB telnet), with a bounded line.
#![warn(clippy::indexing_slicing)]

use bytes::{Buf, BytesMut};

/// What the framer found at the front of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framed<'a> {
    /// A complete line, without its `\n`.
    Line(&'a [u8]),
    /// A line longer than the limit: its first `max_line` bytes. The rest of it is dropped as
    /// it arrives, up to its `\n`, and never buffered.
    TooLong(&'a [u8]),
}

/// Takes `\n`-terminated lines off the front of a stream buffer.
///
/// Remembers how far a partial last line has been searched, so a slow sender does not make
/// every read rescan the buffer, and bounds memory: a partial line is never kept beyond
/// `max_line` bytes.
#[derive(Clone, Debug)]
pub(crate) struct LineFramer {
    max_line: usize,
    /// Inside an overlong line: drop bytes until the next `\n`.
    skipping: bool,
    /// How far the buffer's partial line has been searched for `\n` already.
    scanned: usize,
}

impl LineFramer {
    /// A framer for lines of at most `max_line` bytes (at least 1), `\n` excluded.
    pub(crate) fn new(max_line: usize) -> LineFramer {
        LineFramer { max_line: max_line.max(1), skipping: false, scanned: 0 }
    }

    /// Hands every complete line at the front of `buf` to `f` and removes them; a partial last
    /// line stays in `buf` (or is dropped, once reported, if it is already too long).
    pub(crate) fn frame<F: FnMut(Framed<'_>)>(&mut self, buf: &mut BytesMut, f: F) {
        let used = self.frame_slice(buf, f);
        buf.advance(used);
    }

    /// As [`frame`](Self::frame) on a slice, which is left alone: returns how many bytes the
    /// caller must drop from its front once it is done with the lines (which borrow `data`).
    pub(crate) fn frame_slice<'b, F: FnMut(Framed<'b>)>(
        &mut self,
        data: &'b [u8],
        mut f: F,
    ) -> usize {
        let mut pos = 0;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            let from = self.scanned.min(rest.len());
            let newline =
                memchr::memchr(b'\n', rest.get(from..).unwrap_or_default()).map(|i| i + from);
            self.scanned = 0;
            match newline {
                Some(end) => {
                    let line = rest.get(..end).unwrap_or_default();
                    if std::mem::take(&mut self.skipping) {
                        // The end of an overlong line, already reported.
                    } else if line.len() > self.max_line {
                        f(Framed::TooLong(line.get(..self.max_line).unwrap_or_default()));
                    } else {
                        f(Framed::Line(line));
                    }
                    pos += end + 1;
                }
                None => {
                    if self.skipping {
                        pos = data.len();
                    } else if rest.len() > self.max_line {
                        f(Framed::TooLong(rest.get(..self.max_line).unwrap_or_default()));
                        self.skipping = true;
                        pos = data.len();
                    } else {
                        self.scanned = rest.len();
                    }
                    return pos;
                }
            }
        }
    }

    /// At end of stream: frames what is complete, then hands over what is left as a last line
    /// even without its `\n`, and empties `buf`.
    pub(crate) fn frame_eof<F: FnMut(Framed<'_>)>(&mut self, buf: &mut BytesMut, mut f: F) {
        self.frame(buf, &mut f);
        let skipping = std::mem::take(&mut self.skipping);
        self.scanned = 0;
        if !buf.is_empty() && !skipping {
            f(Framed::Line(buf));
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut LineFramer, buf: &mut BytesMut) -> Vec<Result<String, String>> {
        let mut out = Vec::new();
        framer.frame(buf, |f| {
            out.push(match f {
                Framed::Line(l) => Ok(String::from_utf8_lossy(l).into_owned()),
                Framed::TooLong(h) => Err(String::from_utf8_lossy(h).into_owned()),
            })
        });
        out
    }

    #[test]
    fn frames_lines_and_bounds_long_ones() {
        let mut f = LineFramer::new(4);
        let mut buf = BytesMut::from(&b"ab\nabcdef\nxy"[..]);
        assert_eq!(frames(&mut f, &mut buf), [Ok("ab".into()), Err("abcd".into())]);
        assert_eq!(&buf[..], b"xy");
        buf.extend_from_slice(b"zzzz");
        assert_eq!(frames(&mut f, &mut buf), [Err("xyzz".into())]);
        assert!(buf.is_empty());
        buf.extend_from_slice(b"zz\nok\n");
        assert_eq!(frames(&mut f, &mut buf), [Ok("ok".into())]);
    }
}

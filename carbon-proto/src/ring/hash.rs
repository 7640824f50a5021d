//! The position functions behind the rings, and the Python `repr` that carbon's replica keys
//! are made of.
//!
//! - MD5 prefix (`carbon_ch`): the first two bytes of the digest, big-endian, which is what
//!   carbon's `int(md5(key).hexdigest()[:4], 16)` and carbon-c-relay's `(md5[0] << 8) + md5[1]`
//!   both compute.
//! - FNV-1a, 32 and 64 bits. carbon hashes the UTF-8 bytes as unsigned values. carbon-c-relay
//!   XORs each plain (signed, on x86) `char`, so a byte >= 0x80 is sign-extended first: to
//!   `0xffffffXX` for the 32-bit hash, and to `0xffffffffffffffXX` for the 64-bit one (as the
//!   3.7.3 binary places non-ASCII names); the `_c` variants reproduce that.
//! - MurmurHash3 x86_32 (`mmh3_ch`), as the `mmh3` Python module computes it.
//! - The jump consistent hash of Lamping and Veach, with carbon-c-relay's `double` arithmetic.

use md5::{Digest, Md5};

const FNV32_OFFSET: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;
const FNV64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The first 16 bits of the MD5 digest of `bytes`: carbon's `carbon_ch` position.
pub(crate) fn md5_prefix16(bytes: &[u8]) -> u16 {
    let digest = Md5::digest(bytes);
    u16::from_be_bytes([digest[0], digest[1]])
}

/// 32-bit FNV-1a over unsigned bytes, as carbon's `fnv32a`.
pub(crate) fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV32_OFFSET, |h, &b| (h ^ u32::from(b)).wrapping_mul(FNV32_PRIME))
}

/// A byte as C's `(unsigned int)(char)b` on a platform where `char` is signed.
fn sign_extended(b: u8) -> u32 {
    // i8 -> i32 sign-extends, i32 -> u32 keeps the bits.
    i32::from(b as i8) as u32
}

/// A byte as C's `(unsigned long long)(char)b` on a platform where `char` is signed.
fn sign_extended_64(b: u8) -> u64 {
    i64::from(b as i8) as u64
}

/// 32-bit FNV-1a as carbon-c-relay computes it: bytes >= 0x80 are sign-extended.
pub(crate) fn fnv1a_32_c(bytes: &[u8]) -> u32 {
    bytes.iter().fold(FNV32_OFFSET, |h, &b| (h ^ sign_extended(b)).wrapping_mul(FNV32_PRIME))
}

/// 64-bit FNV-1a as carbon-c-relay computes it: bytes >= 0x80 are sign-extended to 64 bits.
pub(crate) fn fnv1a_64_c(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV64_OFFSET, |h, &b| (h ^ sign_extended_64(b)).wrapping_mul(FNV64_PRIME))
}

/// Folds a 32-bit hash to 16 bits the way both carbon and carbon-c-relay do for `fnv1a_ch`.
pub(crate) fn fold16(h: u32) -> u16 {
    ((h >> 16) ^ (h & 0xffff)) as u16
}

/// MurmurHash3, x86 32-bit variant.
pub(crate) fn murmur3_x86_32(bytes: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mix = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);

    let mut h = seed;
    let mut blocks = bytes.chunks_exact(4);
    for block in &mut blocks {
        let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        h ^= mix(k);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let k = tail.iter().rev().fold(0u32, |k, &b| (k << 8) | u32::from(b));
        h ^= mix(k);
    }
    // The length is mixed in modulo 2^32, as the reference does with its `int len`.
    h ^= bytes.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The jump consistent hash: a bucket in `0..buckets` for `key`. `buckets` must be at least 1
/// (0 gives 0, like any single bucket would).
///
/// The arithmetic is carbon-c-relay's: the step is computed in `double` as
/// `(b + 1) * (2^31 / ((key >> 33) + 1))` and truncated.
pub(crate) fn jump_bucket(mut key: u64, buckets: u32) -> u32 {
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    // b < buckets <= u32::MAX by the loop condition; b is -1 only when buckets is 0.
    b.max(0) as u32
}

/// Appends Python 3's `repr()` of the string `s` (quotes included) to `out`.
///
/// Python uses single quotes unless the text has a `'` and no `"`; escapes the chosen quote and
/// backslash; writes `\t`, `\n`, `\r`; writes other characters that `str.isprintable()` rejects
/// as `\xHH`, `\uHHHH` or `\UHHHHHHHH`; and keeps everything else as it is.
///
/// The one difference: code points that are unassigned in Python's Unicode database are
/// escaped by Python and kept here (telling them apart needs that database). Noncharacters and
/// every assigned non-printable class (controls, separators, format and private-use
/// characters) are handled.
pub(crate) fn py_repr_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if py_printable(c) => out.push(c),
            c => {
                let cp = u32::from(c);
                let escaped = if cp <= 0xff {
                    format!("\\x{cp:02x}")
                } else if cp <= 0xffff {
                    format!("\\u{cp:04x}")
                } else {
                    format!("\\U{cp:08x}")
                };
                out.push_str(&escaped);
            }
        }
    }
    out.push(quote);
}

/// Non-ASCII code points that Python's `str.isprintable()` rejects and that are assigned
/// (Unicode categories Cc, Zs, Zl, Zp, Cf, Co), as inclusive ranges. The same set in Unicode
/// 14 (Python 3.11) and later versions so far.
const NOT_PRINTABLE: &[(u32, u32)] = &[
    (0x80, 0x9f),
    (0xa0, 0xa0),
    (0xad, 0xad),
    (0x600, 0x605),
    (0x61c, 0x61c),
    (0x6dd, 0x6dd),
    (0x70f, 0x70f),
    (0x890, 0x891),
    (0x8e2, 0x8e2),
    (0x1680, 0x1680),
    (0x180e, 0x180e),
    (0x2000, 0x200f),
    (0x2028, 0x202f),
    (0x205f, 0x2064),
    (0x2066, 0x206f),
    (0x3000, 0x3000),
    (0xe000, 0xf8ff),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x13438),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
    (0xf0000, 0xffffd),
    (0x100000, 0x10fffd),
];

/// Python's `str.isprintable()` for one character, but for unassigned code points (see
/// [`py_repr_str`]).
fn py_printable(c: char) -> bool {
    let cp = u32::from(c);
    if cp < 0x80 {
        return (0x20..0x7f).contains(&cp);
    }
    // Noncharacters (U+FDD0..U+FDEF and the last two of every plane) are unassigned forever.
    if (0xfdd0..=0xfdef).contains(&cp) || cp & 0xfffe == 0xfffe {
        return false;
    }
    let i = NOT_PRINTABLE.partition_point(|&(_, hi)| hi < cp);
    NOT_PRINTABLE.get(i).is_none_or(|&(lo, _)| lo > cp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(s: &str) -> String {
        let mut out = String::new();
        py_repr_str(s, &mut out);
        out
    }

    #[test]
    fn md5_prefix_matches_carbon_vectors() {
        // graphite-reference.md §2.7.
        assert_eq!(md5_prefix16(b"('127.0.0.1', 'a'):0"), 24043);
        assert_eq!(md5_prefix16(b"('10.0.0.1', None):0"), 46982);
        assert_eq!(md5_prefix16(b"foo.bar"), 1273);
        assert_eq!(md5_prefix16(b"servers.web01.cpu.user"), 28773);
        assert_eq!(md5_prefix16(b"a"), 3265);
        assert_eq!(md5_prefix16(b"carbon.agents.host-a.cpuUsage"), 58653);
    }

    #[test]
    fn fnv1a_matches_carbon_vector() {
        assert_eq!(fnv1a_32(b"foo.bar"), 3_415_486_196);
        assert_eq!(fold16(fnv1a_32(b"foo.bar")), 58720);
        assert_eq!(fnv1a_32(b""), FNV32_OFFSET);
    }

    #[test]
    fn c_relay_fnv1a_sign_extends_high_bytes() {
        // Plain ASCII is the same either way.
        assert_eq!(fnv1a_32_c(b"foo.bar"), fnv1a_32(b"foo.bar"));
        // A byte >= 0x80 is XORed as 0xffffffXX.
        let expected = (FNV32_OFFSET ^ 0xffff_ffe9).wrapping_mul(FNV32_PRIME);
        assert_eq!(fnv1a_32_c(&[0xe9]), expected);
        assert_ne!(fnv1a_32_c(&[0xe9]), fnv1a_32(&[0xe9]));
        let expected64 = (FNV64_OFFSET ^ 0xffff_ffff_ffff_ffe9).wrapping_mul(FNV64_PRIME);
        assert_eq!(fnv1a_64_c(&[0xe9]), expected64);
        // Standard 64-bit FNV-1a test vector for ASCII input.
        assert_eq!(fnv1a_64_c(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn murmur3_matches_reference_vectors() {
        // From the mmh3 module (`mmh3.hash(key)`, signed) and SMHasher's verification values.
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"foo", 0) as i32, -156_908_512);
        assert_eq!(murmur3_x86_32("héllo".as_bytes(), 0) as i32, -1_130_389_400);
        assert_eq!(murmur3_x86_32(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0), 0x2e4f_f723);
    }

    #[test]
    fn jump_matches_paper_properties() {
        assert_eq!(jump_bucket(0, 1), 0);
        assert_eq!(jump_bucket(12345, 0), 0);
        for key in [0u64, 1, 0xdead_beef, u64::MAX] {
            // Growing the bucket count only ever moves a key to the new bucket.
            let mut prev = jump_bucket(key, 1);
            for n in 2..200 {
                let b = jump_bucket(key, n);
                assert!(b < n);
                assert!(b == prev || b == n - 1, "key {key} n {n}");
                prev = b;
            }
        }
        // Computed with a Python transcription of the paper's algorithm; carbon-c-relay's
        // own placements are checked by the integration tests.
        assert_eq!(jump_bucket(1, 1_000), 549);
        assert_eq!(jump_bucket(0xdead_10cc, 100_000), 6591);
    }

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(repr("127.0.0.1"), "'127.0.0.1'");
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr("say \"hi\""), "'say \"hi\"'");
        assert_eq!(repr("back\\slash"), "'back\\\\slash'");
        assert_eq!(repr(""), "''");
    }

    #[test]
    fn repr_escapes_what_python_does_not_print() {
        assert_eq!(repr("\t\n\r\x00\x1f\x7f"), "'\\t\\n\\r\\x00\\x1f\\x7f'");
        assert_eq!(repr("é\u{a0}\u{ad}"), "'é\\xa0\\xad'");
        assert_eq!(repr("\u{200b}x\u{2028}"), "'\\u200bx\\u2028'");
        assert_eq!(repr("\u{fffe}\u{10ffff}"), "'\\ufffe\\U0010ffff'");
        assert_eq!(repr("\u{e000}日本😀"), "'\\ue000日本😀'");
    }
}

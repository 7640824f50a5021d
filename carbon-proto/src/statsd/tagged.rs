//! carbon's tagged-name normalisation for names that are already known to be valid, without
//! the general parser's maps: statsd and OpenTSDB build many tagged names per packet.
#![warn(clippy::indexing_slicing)]

use std::cmp::Ordering;

/// `metric;k=v;...` as [`tags::normalize`](crate::tags::normalize) gives it: for each tag the
/// last value given, then the `;k=v` strings sorted as whole strings.
///
/// The caller guarantees what carbon would otherwise check: `metric` is non-empty and does
/// not start with `~`; tag names are non-empty, without `;`, `!`, `^`, `=`, and are not
/// `name`; values are non-empty, without `;`, and do not start with `~`.
pub(crate) fn tagged_name(metric: &str, tags: &mut Vec<(&str, &str)>) -> String {
    // Keep the last value of each tag: stable sort by name, then keep each run's last.
    tags.sort_by(|a, b| a.0.cmp(b.0));
    let mut kept: Vec<(&str, &str)> = Vec::with_capacity(tags.len());
    for &(k, v) in tags.iter() {
        match kept.last_mut() {
            Some(last) if last.0 == k => *last = (k, v),
            _ => kept.push((k, v)),
        }
    }
    // Sort as carbon sorts the `;k=v` strings.
    kept.sort_by(|a, b| segment_cmp(*a, *b));
    let len = metric.len() + kept.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>();
    let mut out = String::with_capacity(len);
    out.push_str(metric);
    for (k, v) in kept {
        out.push(';');
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn segment_cmp(a: (&str, &str), b: (&str, &str)) -> Ordering {
    segment_bytes(a).cmp(segment_bytes(b))
}

/// The bytes of `k=v`, without building it.
fn segment_bytes<'a>((k, v): (&'a str, &'a str)) -> impl Iterator<Item = u8> + 'a {
    k.bytes().chain(std::iter::once(b'=')).chain(v.bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::normalize;

    #[test]
    fn matches_carbon() {
        for (metric, tags) in [
            ("cpu", vec![("a", "1"), ("a-b", "2")]),
            ("cpu", vec![("z", "1"), ("a", "2"), ("z", "3")]),
            ("m", vec![("ab", "1"), ("a", "z"), ("a", "0")]),
            ("m", vec![("a", "b=c"), ("a.b", "x"), ("a", "a")]),
            ("m", vec![("é", "1"), ("e", "2"), ("E", "3")]),
        ] {
            let raw: String =
                tags.iter().fold(metric.to_string(), |s, (k, v)| format!("{s};{k}={v}"));
            let mut t = tags.clone();
            assert_eq!(tagged_name(metric, &mut t), normalize(&raw).unwrap(), "{raw}");
        }
    }

    proptest::proptest! {
        #[test]
        fn matches_carbon_on_random_tags(
            metric in "[a-z.]{1,4}",
            tags in proptest::collection::vec(("[a-c.=_-]{1,3}", "[a-c.=~_-]{1,3}"), 0..8),
        ) {
            let tags: Vec<(String, String)> = tags
                .into_iter()
                .filter(|(k, v)| !k.contains('=') && k != "name" && !v.starts_with('~'))
                .collect();
            let raw: String =
                tags.iter().fold(metric.clone(), |s, (k, v)| format!("{s};{k}={v}"));
            let mut pairs: Vec<(&str, &str)> =
                tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            proptest::prop_assert_eq!(tagged_name(&metric, &mut pairs), normalize(&raw).unwrap());
        }
    }
}

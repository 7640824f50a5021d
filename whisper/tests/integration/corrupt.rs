//! Corrupt and hostile files: no operation may panic on any bytes, and every way a header can
//! be wrong gives [`Error::Corrupt`] (or [`Error::Unsupported`]) naming the file and the problem.
//!
//! Inputs come in three kinds: arbitrary bytes; headers assembled from random fields (codes,
//! xFilesFactors, counts, offsets, steps, point counts, maxRetention) over plausible data; and
//! valid files full of points, then damaged (a header field replaced, bytes flipped, cut short or
//! lengthened). Each is driven through `MemStorage` and through real files by the path
//! functions, `pread` and mmap handles.

use std::path::Path;

use proptest::prelude::*;
use whisper::{
    AggregationMethod, Corruption, CreateOptions, Error, MemStorage, OpenOptions, ResizeOptions,
    Retention, Storage, Whisper,
};

const NOW: i64 = 1_700_000_000;

// ---- building headers -------------------------------------------------------------------

/// A header from raw fields: `(offset, seconds per point, points)` per archive.
fn header(code: u32, max_retention: u32, xff: f32, archives: &[(u32, u32, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&max_retention.to_be_bytes());
    out.extend_from_slice(&xff.to_bits().to_be_bytes());
    out.extend_from_slice(&(archives.len() as u32).to_be_bytes());
    for &(offset, spp, points) in archives {
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&spp.to_be_bytes());
        out.extend_from_slice(&points.to_be_bytes());
    }
    out
}

/// A valid file of three archives (10:6, 60:5, 300:4) with some points, and its archive list.
fn sample_file() -> (Vec<u8>, Vec<Retention>) {
    let archives = vec![Retention::new(10, 6), Retention::new(60, 5), Retention::new(300, 4)];
    let mut w = CreateOptions::new().x_files_factor(0.0).create_in_memory(&archives).unwrap();
    let points: Vec<(i64, f64)> = (0..120).map(|k| (NOW - k * 10, k as f64)).collect();
    w.update_many(&points, NOW).unwrap();
    (w.into_storage().into_bytes(), archives)
}

// ---- arbitrary inputs ---------------------------------------------------------------------

fn field_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..64,
        2 => prop::sample::select(vec![0, 1, 2, 3, 5, 10, 60, 300, 3600, 86400]),
        1 => prop::sample::select(vec![u32::MAX, u32::MAX - 11, 1 << 31, (1 << 31) - 1, 1 << 16]),
        1 => any::<u32>(),
    ]
}

fn xff_bits() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => prop::sample::select(vec![0.0f32, 0.5, 1.0, 0.7]),
        1 => prop::sample::select(vec![-0.0f32, f32::NAN, 1.5, -0.5, f32::INFINITY, f32::MIN_POSITIVE]),
        1 => any::<u32>().prop_map(f32::from_bits),
    ]
}

/// A header assembled from random fields, followed by data made of points whose timestamps
/// are near `NOW` and aligned to some step, so reads find values.
fn crafted() -> impl Strategy<Value = Vec<u8>> {
    // Mostly plausible fields, so that many files open and the operations get deep.
    let archive = (
        prop::option::weighted(0.1, field_u32()),
        prop_oneof![4 => prop::sample::select(vec![1u32, 2, 3, 5, 10, 60, 300]), 1 => field_u32()],
        prop_oneof![4 => 1u32..40, 1 => field_u32()],
    );
    (
        prop_oneof![6 => 1u32..=8, 1 => field_u32()],
        prop::option::weighted(0.2, field_u32()),
        prop_oneof![3 => Just(0.5f32), 1 => xff_bits()],
        prop::collection::vec(archive, 0..5),
        prop_oneof![3 => Just(0i64), 1 => -40i64..40],
        prop::collection::vec((0u32..4000, -8i32..8), 0..200),
    )
        .prop_map(|(code, max_retention, xff, archives, extra_len, points)| {
            let mut at = 16 + 12 * archives.len() as u64;
            let mut infos = Vec::new();
            for (offset, spp, n) in &archives {
                // Mostly contiguous, as whisper writes them; sometimes anywhere.
                let offset = offset.unwrap_or(at.min(u64::from(u32::MAX)) as u32);
                infos.push((offset, *spp, *n));
                at = u64::from(offset).saturating_add(u64::from(*n) * 12);
            }
            let longest =
                infos.iter().map(|&(_, s, n)| u64::from(s) * u64::from(n)).max().unwrap_or(0);
            let max_retention = max_retention.unwrap_or(longest.min(u64::from(u32::MAX)) as u32);
            let mut bytes = header(code, max_retention, xff, &infos);
            let len = (at.min(1 << 16) as i64 + extra_len).max(0) as usize;
            let step = infos.first().map_or(1, |&(_, s, _)| s.clamp(1, 3600));
            for (k, v) in points {
                let t = (NOW as u32 - NOW as u32 % step).wrapping_sub(k.wrapping_mul(step));
                bytes.extend_from_slice(&t.to_be_bytes());
                bytes.extend_from_slice(&f64::from(v).to_bits().to_be_bytes());
            }
            bytes.resize(len, 0);
            bytes
        })
}

#[derive(Clone, Debug)]
enum Damage {
    /// Replace the 4 bytes at this offset (a header field when below the header's length).
    Field {
        at: usize,
        value: u32,
    },
    Flip {
        at: usize,
        byte: u8,
    },
    Truncate {
        len: usize,
    },
    Extend {
        by: usize,
    },
}

fn damaged() -> impl Strategy<Value = Vec<u8>> {
    let damage = prop_oneof![
        2 => ((0usize..13).prop_map(|i| i * 4), field_u32())
            .prop_map(|(at, value)| Damage::Field { at, value }),
        4 => (any::<usize>(), 1u8..).prop_map(|(at, byte)| Damage::Flip { at, byte }),
        1 => any::<usize>().prop_map(|len| Damage::Truncate { len }),
        1 => (1usize..100).prop_map(|by| Damage::Extend { by }),
    ];
    prop::collection::vec(damage, 1..4).prop_map(|damage| {
        let (mut bytes, _) = sample_file();
        for d in damage {
            match d {
                Damage::Field { at, value } => {
                    if let Some(b) = bytes.get_mut(at..at + 4) {
                        b.copy_from_slice(&value.to_be_bytes());
                    }
                }
                Damage::Flip { at, byte } => {
                    let n = bytes.len().max(1);
                    if let Some(b) = bytes.get_mut(at % n) {
                        *b ^= byte;
                    }
                }
                Damage::Truncate { len } => {
                    let n = bytes.len() + 1;
                    bytes.truncate(len % n);
                }
                Damage::Extend { by } => bytes.resize(bytes.len() + by, 0xAB),
            }
        }
        bytes
    })
}

fn any_file() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..300),
        3 => crafted(),
        3 => damaged(),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Info,
    Fetch {
        from_age: i64,
        until_age: Option<i64>,
        now_shift: i64,
    },
    /// Forced archive: by index into the header (or any step).
    FetchArchive {
        index: usize,
        from_age: i64,
    },
    Update {
        age: i64,
        value: f64,
    },
    UpdateMany {
        points: Vec<(i64, f64)>,
    },
    SetAggregation {
        method: Option<AggregationMethod>,
        xff: Option<f64>,
    },
    Slots {
        index: usize,
    },
    /// merge / diff / fill with a copy of itself, both ways.
    WithCopy,
}

fn op() -> impl Strategy<Value = Op> {
    let age = prop_oneof![-100i64..100_000, any::<i64>()];
    prop_oneof![
        Just(Op::Info),
        (age.clone(), prop::option::of(age.clone()), prop_oneof![Just(0i64), any::<i64>()])
            .prop_map(|(from_age, until_age, now_shift)| Op::Fetch {
                from_age,
                until_age,
                now_shift
            }),
        (0usize..6, age.clone()).prop_map(|(index, from_age)| Op::FetchArchive { index, from_age }),
        (age.clone(), any::<f64>()).prop_map(|(age, value)| Op::Update { age, value }),
        prop::collection::vec((age, any::<f64>()), 0..20)
            .prop_map(|points| Op::UpdateMany { points }),
        (
            prop::option::of(prop::sample::select(AggregationMethod::ALL.to_vec())),
            prop::option::of(prop_oneof![0.0f64..=1.0, any::<f64>()]),
        )
            .prop_map(|(method, xff)| Op::SetAggregation { method, xff }),
        (0usize..6).prop_map(|index| Op::Slots { index }),
        Just(Op::WithCopy),
    ]
}

/// Runs one operation on an open handle; any result but a panic is fine.
fn apply<S: Storage>(w: &mut Whisper<S>, op: &Op) {
    match op {
        Op::Info => {
            let _ = w.info();
        }
        Op::Fetch { from_age, until_age, now_shift } => {
            let now = NOW.wrapping_add(*now_shift);
            let _ =
                w.fetch(now.wrapping_sub(*from_age), until_age.map(|u| now.wrapping_sub(u)), now);
        }
        Op::FetchArchive { index, from_age } => {
            let spp = w.header().archives().get(*index).map_or(7, |a| a.seconds_per_point());
            let _ = w.fetch_archive(NOW.wrapping_sub(*from_age), None, NOW, spp);
        }
        Op::Update { age, value } => {
            let _ = w.update(*value, Some(NOW.wrapping_sub(*age)), NOW);
        }
        Op::UpdateMany { points } => {
            let points: Vec<(i64, f64)> =
                points.iter().map(|&(a, v)| (NOW.wrapping_sub(a), v)).collect();
            let _ = w.update_many(&points, NOW);
        }
        Op::SetAggregation { method, xff } => {
            let _ = w.set_aggregation(*method, *xff);
        }
        Op::Slots { index } => {
            let _ = w.archive_slots(*index);
        }
        Op::WithCopy => {
            let Some(bytes) = w.storage().as_bytes().map(<[u8]>::to_vec) else {
                return;
            };
            if let Ok(mut other) = Whisper::from_storage(MemStorage::new(bytes), "copy.wsp") {
                let _ = whisper::merge_into(w, &mut other, None, None, NOW);
                let _ = whisper::merge_into(&mut other, w, Some(NOW - 500), Some(NOW), NOW);
                let _ = whisper::diff_files(w, &mut other, false, None, NOW);
                let _ = whisper::diff_files(&mut other, w, true, Some(NOW - 100), NOW);
                let _ = whisper::fill_from(&mut other, w, NOW as f64 + 0.5);
            }
        }
    }
}

/// The same operations through the path functions, on a real file.
fn apply_to_path(path: &Path, copy: &Path, op: &Op) {
    match op {
        Op::Info => {
            let _ = whisper::info(path);
            if let Ok(mut w) = OpenOptions::new().mmap(true).open(path) {
                let _ = w.fetch(NOW - 1000, None, NOW);
                let _ = w.archive_slots(0);
            }
        }
        Op::Fetch { from_age, until_age, now_shift } => {
            let now = NOW.wrapping_add(*now_shift);
            let from = now.wrapping_sub(*from_age);
            let until = until_age.map(|u| now.wrapping_sub(u));
            let _ = whisper::fetch(path, from, until, now);
            if let Ok(mut w) = OpenOptions::new().mmap(true).open(path) {
                let _ = w.fetch(from, until, now);
            }
        }
        Op::Update { age, value } => {
            let _ = whisper::update(path, *value, Some(NOW.wrapping_sub(*age)), NOW);
        }
        Op::UpdateMany { points } => {
            let points: Vec<(i64, f64)> =
                points.iter().map(|&(a, v)| (NOW.wrapping_sub(a), v)).collect();
            let _ = whisper::update_many(path, &points, NOW);
        }
        Op::SetAggregation { method, xff } => {
            let _ = whisper::set_aggregation_method(
                path,
                method.unwrap_or(AggregationMethod::Max),
                *xff,
            );
            if let Some(x) = xff {
                let _ = whisper::set_x_files_factor(path, *x);
            }
        }
        Op::FetchArchive { .. } | Op::Slots { .. } => {
            if let Ok(mut w) = OpenOptions::new().open(path) {
                apply(&mut w, op);
            }
        }
        Op::WithCopy => {
            let _ = std::fs::copy(path, copy);
            let _ = whisper::merge(path, copy, None, None, NOW);
            let _ = whisper::merge(copy, path, Some(NOW - 300), None, NOW);
            let _ = whisper::diff(path, copy, false, None, NOW);
            let _ = whisper::diff(copy, path, true, Some(NOW - 60), NOW);
            let _ = whisper::fill(copy, path, NOW as f64, false);
            let mut options = ResizeOptions::new();
            options.new_file(Some(copy.with_extension("resized")));
            let _ = std::fs::remove_file(copy.with_extension("resized"));
            let _ = whisper::resize(path, &[Retention::new(60, 10)], &options, NOW, &mut |_| {});
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_in_memory(bytes in any_file(), ops in prop::collection::vec(op(), 1..12)) {
        if let Ok(mut w) = Whisper::from_storage(MemStorage::new(bytes), "fuzz.wsp") {
            for op in &ops {
                apply(&mut w, op);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_on_disk(bytes in any_file(), ops in prop::collection::vec(op(), 1..8)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz.wsp");
        let copy = dir.path().join("copy.wsp");
        std::fs::write(&path, &bytes).unwrap();
        for op in &ops {
            apply_to_path(&path, &copy, op);
        }
        if let Ok(mut w) = OpenOptions::new().write(true).open(&path) {
            for op in &ops {
                apply(&mut w, op);
            }
        }
    }
}

// ---- targeted cases ---------------------------------------------------------------------

/// Writes `bytes` as `<name>.wsp` and checks that every way of opening or using it gives the
/// same corruption, with a message naming the file and containing `phrase`.
fn expect_corrupt(name: &str, bytes: &[u8], problem: impl Fn(&Corruption) -> bool, phrase: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.wsp"));
    std::fs::write(&path, bytes).unwrap();
    let check = |what: &str, e: Error| {
        let message = e.to_string();
        match &e {
            Error::Corrupt { path: p, problem: c } => {
                assert_eq!(p, &path, "{name}: {what}: path");
                assert!(problem(c), "{name}: {what}: unexpected problem {c:?}");
            }
            other => panic!("{name}: {what}: expected Error::Corrupt, got {other:?}"),
        }
        assert!(
            message.starts_with(&format!("corrupt whisper file {}: ", path.display())),
            "{name}: {what}: {message}"
        );
        assert!(message.contains(phrase), "{name}: {what}: {message:?} lacks {phrase:?}");
    };
    check("info", whisper::info(&path).unwrap_err());
    check("open", OpenOptions::new().open(&path).unwrap_err());
    check("open mmap", OpenOptions::new().mmap(true).open(&path).unwrap_err());
    check("open write", OpenOptions::new().write(true).lock(true).open(&path).unwrap_err());
    check("fetch", whisper::fetch(&path, NOW - 60, None, NOW).unwrap_err());
    check("update", whisper::update(&path, 1.0, None, NOW).unwrap_err());
    check("update_many", whisper::update_many(&path, &[(NOW, 1.0)], NOW).unwrap_err());
    check(
        "set_aggregation_method",
        whisper::set_aggregation_method(&path, AggregationMethod::Sum, None).unwrap_err(),
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}: a failed write changed the file");
    // In memory the name given stands for the path.
    match Whisper::from_storage(MemStorage::new(bytes.to_vec()), &path) {
        Err(e) => check("from_storage", e),
        Ok(_) => panic!("{name}: MemStorage opened it"),
    }
}

/// The header of a valid two-archive file (60:10, 300:4), with its length.
fn two_archives() -> (Vec<u8>, usize) {
    let h = header(1, 1200, 0.5, &[(40, 60, 10), (160, 300, 4)]);
    let len = 160 + 4 * 12;
    let mut bytes = h;
    bytes.resize(len, 0);
    (bytes, len)
}

#[test]
fn two_archives_helper_is_valid() {
    let (bytes, _) = two_archives();
    let w = Whisper::from_storage(MemStorage::new(bytes), "ok.wsp").unwrap();
    assert_eq!(w.header().archives().len(), 2);
}

#[test]
fn rejects_files_shorter_than_the_metadata() {
    for len in [0, 1, 15] {
        let (bytes, _) = two_archives();
        expect_corrupt(
            &format!("short-{len}"),
            &bytes[..len],
            |c| *c == Corruption::ShortHeader { len: len as u64 },
            &format!("unable to read header: the file is {len} bytes, the header needs 16"),
        );
    }
}

#[test]
fn rejects_an_archive_list_cut_short() {
    let (bytes, _) = two_archives();
    expect_corrupt(
        "cut-in-archive-list",
        &bytes[..30],
        |c| *c == Corruption::ArchiveListTruncated { count: 2, len: 30 },
        "2 archives do not fit in a 30-byte file",
    );
}

#[test]
fn rejects_a_huge_archive_count_without_allocating_for_it() {
    let mut bytes = header(1, 600, 0.5, &[(28, 60, 10)]);
    bytes[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
    bytes.resize(28 + 120, 0);
    expect_corrupt(
        "huge-count",
        &bytes,
        |c| matches!(c, Corruption::ArchiveListTruncated { count: u32::MAX, .. }),
        "4294967295 archives do not fit in a 148-byte file",
    );
}

#[test]
fn rejects_data_cut_short() {
    let (bytes, len) = two_archives();
    // Right after the header: archive 0 is missing entirely.
    expect_corrupt(
        "cut-after-header",
        &bytes[..40],
        |c| matches!(c, Corruption::ArchivePastEnd { index: 0, offset: 40, end: 160, len: 40 }),
        "archive 0 (bytes 40..160) runs past the end of the file (40 bytes)",
    );
    // In the middle of archive 1 (the last one).
    expect_corrupt(
        "cut-mid-archive",
        &bytes[..len - 20],
        |c| matches!(c, Corruption::ArchivePastEnd { index: 1, .. }),
        "archive 1 (bytes 160..208) runs past the end of the file (188 bytes)",
    );
    // One byte short.
    expect_corrupt(
        "one-byte-short",
        &bytes[..len - 1],
        |c| matches!(c, Corruption::ArchivePastEnd { index: 1, .. }),
        "runs past the end of the file (207 bytes)",
    );
}

#[test]
fn rejects_archive_offsets_past_the_end() {
    let (mut bytes, len) = two_archives();
    bytes[28..32].copy_from_slice(&u32::MAX.to_be_bytes());
    expect_corrupt(
        "offset-past-end",
        &bytes,
        |c| matches!(c, Corruption::ArchivePastEnd { index: 1, offset: u32::MAX, .. }),
        &format!(
            "archive 1 (bytes 4294967295..4294967343) runs past the end of the file ({len} bytes)"
        ),
    );
}

#[test]
fn rejects_an_archive_inside_the_header() {
    let (mut bytes, _) = two_archives();
    bytes[16..20].copy_from_slice(&4u32.to_be_bytes());
    expect_corrupt(
        "offset-in-header",
        &bytes,
        |c| *c == Corruption::ArchiveInsideHeader { index: 0, offset: 4, header_len: 40 },
        "archive 0 starts at byte 4, inside the 40-byte header",
    );
}

#[test]
fn rejects_overlapping_archives() {
    let (mut bytes, _) = two_archives();
    // Archive 1 starts at archive 0's 10th slot.
    bytes[28..32].copy_from_slice(&148u32.to_be_bytes());
    expect_corrupt(
        "overlap",
        &bytes,
        |c| *c == Corruption::ArchivesOverlap { first: 0, second: 1 },
        "archives 0 and 1 overlap",
    );
    // Both at the same offset, listed coarsest first.
    let mut bytes = header(1, 1200, 0.5, &[(40, 300, 4), (40, 60, 10)]);
    bytes.resize(40 + 120, 0);
    expect_corrupt(
        "same-offset",
        &bytes,
        |c| *c == Corruption::ArchivesOverlap { first: 0, second: 1 },
        "archives 0 and 1 overlap",
    );
}

#[test]
fn rejects_unknown_aggregation_codes() {
    for code in [0u32, 9, u32::MAX] {
        let (mut bytes, _) = two_archives();
        bytes[0..4].copy_from_slice(&code.to_be_bytes());
        expect_corrupt(
            &format!("aggregation-{code}"),
            &bytes,
            |c| *c == Corruption::UnknownAggregation { code },
            &format!("unable to read header: unknown aggregation type {code}"),
        );
    }
}

#[test]
fn rejects_x_files_factor_outside_zero_to_one_and_nan() {
    for (xff, shown) in [
        (1.5f32, "1.5"),
        (-0.5, "-0.5"),
        (f32::NAN, "nan"),
        (f32::INFINITY, "inf"),
        (1.000_000_1, "1.0000001192092896"),
    ] {
        let (mut bytes, _) = two_archives();
        bytes[8..12].copy_from_slice(&xff.to_bits().to_be_bytes());
        expect_corrupt(
            &format!("xff-{shown}"),
            &bytes,
            |c| matches!(c, Corruption::XFilesFactorOutOfRange { value } if value.to_bits() == xff.to_bits()),
            &format!("unable to read header: xFilesFactor {shown} is not between 0 and 1"),
        );
    }
}

#[test]
fn accepts_x_files_factor_bounds_and_negative_zero() {
    for xff in [0.0f32, -0.0, 1.0] {
        let (mut bytes, _) = two_archives();
        bytes[8..12].copy_from_slice(&xff.to_bits().to_be_bytes());
        let w = Whisper::from_storage(MemStorage::new(bytes), "ok.wsp").unwrap();
        assert_eq!(w.header().x_files_factor().to_bits(), xff.to_bits());
    }
}

#[test]
fn rejects_a_header_without_archives() {
    let mut bytes = header(1, 0, 0.5, &[]);
    bytes.resize(100, 0);
    expect_corrupt("no-archives", &bytes, |c| *c == Corruption::NoArchives, "it lists no archives");
}

#[test]
fn rejects_archives_with_zero_points_or_zero_seconds_per_point() {
    let (mut bytes, _) = two_archives();
    bytes[24..28].copy_from_slice(&0u32.to_be_bytes());
    expect_corrupt(
        "zero-points",
        &bytes,
        |c| *c == Corruption::EmptyArchive { index: 0, field: "points" },
        "archive 0 has 0 points",
    );
    let (mut bytes, _) = two_archives();
    bytes[32..36].copy_from_slice(&0u32.to_be_bytes());
    expect_corrupt(
        "zero-spp",
        &bytes,
        |c| *c == Corruption::EmptyArchive { index: 1, field: "seconds per point" },
        "archive 1 has 0 seconds per point",
    );
}

#[test]
fn rejects_max_retention_longer_than_every_archive() {
    let (mut bytes, _) = two_archives();
    bytes[4..8].copy_from_slice(&1201u32.to_be_bytes());
    expect_corrupt(
        "long-max-retention",
        &bytes,
        |c| *c == Corruption::MaxRetentionTooLong { max_retention: 1201, longest: 1200 },
        "maxRetention 1201 is longer than the longest archive (1200 seconds)",
    );
}

#[test]
fn refuses_go_whisper_compressed_files_as_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    for (version, code, name) in [(1u8, 1u32, "average"), (2, 7, "mix"), (2, 42, "unknown")] {
        let path = dir.path().join(format!("cwhisper-{version}-{code}.wsp"));
        let mut bytes = b"whisper_compressed".to_vec();
        bytes.push(version);
        bytes.extend_from_slice(&code.to_be_bytes());
        bytes.resize(400, 0);
        std::fs::write(&path, &bytes).unwrap();
        let expected = format!(
            "{}: go-whisper's compressed format (version {version}, aggregation {name}) is not \
             supported",
            path.display()
        );
        for e in [
            whisper::info(&path).unwrap_err(),
            whisper::fetch(&path, NOW - 60, None, NOW).unwrap_err(),
            whisper::update(&path, 1.0, None, NOW).unwrap_err(),
            Whisper::from_storage(MemStorage::new(bytes.clone()), &path).unwrap_err(),
        ] {
            assert!(matches!(&e, Error::Unsupported { path: p, .. } if p == &path), "{e:?}");
            assert_eq!(e.to_string(), expected);
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
    // Just the magic, nothing after it.
    let e = Whisper::from_storage(MemStorage::new(b"whisper_compressed".to_vec()), "c.wsp");
    assert!(matches!(e, Err(Error::Unsupported { .. })));
}

// ---- a file that shrinks while open -----------------------------------------------------------

#[test]
fn reads_fail_cleanly_when_the_file_shrinks_under_an_open_handle() {
    let (content, archives) = sample_file();
    let header_len = 16 + 12 * archives.len();
    let archive_end: Vec<usize> = {
        let w = Whisper::from_storage(MemStorage::new(content.clone()), "x").unwrap();
        w.header().archives().iter().map(|a| a.end() as usize).collect()
    };
    let cuts = [
        0,
        10,
        header_len - 1,
        header_len,
        header_len + 6,
        archive_end[0] - 1,
        archive_end[0] + 30,
        archive_end[1] + 1,
        content.len() - 5,
    ];
    let dir = tempfile::tempdir().unwrap();
    for cut in cuts {
        let path = dir.path().join(format!("shrink-{cut}.wsp"));
        std::fs::write(&path, &content).unwrap();
        let mut reader = OpenOptions::new().open(&path).unwrap();
        let mut writer = OpenOptions::new().write(true).open(&path).unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut as u64).unwrap();

        let is_truncated = |e: &Error| {
            matches!(e, Error::Corrupt { path: p, problem: Corruption::Truncated } if p == &path)
                && e.to_string().contains("the file is shorter than its header says")
        };
        // A whole archive (every slot is read) must fail exactly when its data is cut.
        for (i, a) in archives.iter().enumerate() {
            let from = NOW - a.retention() as i64;
            let lost = cut < archive_end[i];
            for (what, result) in [
                ("fetch", reader.fetch_archive(from, None, NOW, a.seconds_per_point())),
                ("fetch (writer)", writer.fetch_archive(from, None, NOW, a.seconds_per_point())),
            ] {
                match result {
                    Err(e) => {
                        assert!(lost && is_truncated(&e), "cut {cut}, archive {i}: {what}: {e:?}")
                    }
                    Ok(s) => assert!(!lost, "cut {cut}, archive {i}: {what} returned {s:?}"),
                }
            }
            let slots = reader.archive_slots(i);
            assert_eq!(slots.is_err(), lost, "cut {cut}, archive {i}: slots");
        }
        if cut < header_len {
            assert!(is_truncated(&reader.info().unwrap_err()), "cut {cut}: info");
            assert!(is_truncated(&reader.fetch(NOW - 60, None, NOW).unwrap_err()));
        }
        // Writes may fail or not (a write past the end extends the file), but never panic.
        let _ = writer.update(1.0, Some(NOW - 30), NOW);
        let _ = writer.update_many(&[(NOW - 20, 2.0), (NOW - 1000, 3.0)], NOW);
        let _ = writer.set_aggregation(Some(AggregationMethod::Max), Some(0.1));
        let _ = reader.fetch(NOW - 2000, None, NOW);
    }
}

// ---- a forced fetch on a hostile header ------------------------------------------------------

const FORCED_FETCH_HELPER: &str = "corrupt::helper_forced_fetch_of_a_hostile_file";

/// 76 bytes: archive 0 is 1 s x 1 point and never written; archive 1 is 2^31 s x 2 points,
/// which lets the header claim a `maxRetention` of 2^32 - 1 seconds.
fn hostile_for_forced_fetch() -> Vec<u8> {
    let mut bytes = header(1, u32::MAX, 0.5, &[(40, 1, 1), (52, 1 << 31, 2)]);
    bytes.resize(76, 0);
    bytes
}

/// Child side of `forced_fetch_of_an_unwritten_archive_is_bounded`.
#[test]
fn helper_forced_fetch_of_a_hostile_file() {
    if !crate::create::is_helper(FORCED_FETCH_HELPER) {
        return;
    }
    let mut w = Whisper::from_storage(MemStorage::new(hostile_for_forced_fetch()), "hostile.wsp")
        .expect("the header is valid");
    let r = w.fetch_archive(NOW - (1 << 33), None, NOW, 1);
    println!("FETCH: {:?}", r.map(|s| s.map(|s| s.values.len())));
}

/// A forced-archive fetch (`fetch_archive`, whisper.py's `archiveToSelect`) of an archive whose
/// slot 0 is empty used to return `(until - from) / step` `None`s, bounded only by
/// `maxRetention / step`: on the 76-byte file above, 2^32 values, and the process aborted
/// ("memory allocation of 68719476720 bytes failed"). Untrusted bytes must not abort the process
/// (STYLE.md, Panics); past 2^22 values it is now an error (`Error::RangeTooLong`).
/// The child runs with 4 GB of address space.
#[test]
fn forced_fetch_of_an_unwritten_archive_is_bounded() {
    let out = crate::create::run_helper(FORCED_FETCH_HELPER, "ulimit -v 4000000", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the fetch killed the process ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains("memory"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let bounded = stdout.contains("FETCH: Err")
        || stdout
            .lines()
            .find_map(|l| {
                let (_, rest) = l.split_once("FETCH: Ok(Some(")?;
                rest.strip_suffix("))")?.parse::<u64>().ok()
            })
            .is_some_and(|n| n <= 1 << 20);
    assert!(bounded, "{stdout}");
}

//! Tests of `store::wal`: round trips across segment rotations and reopenings, torn tails cut at
//! every byte, random damage, trimming, concurrent appenders, the fsync modes, a full disk (a
//! file size limit in a child process) and crashes (a child process killed with SIGKILL in the
//! middle of appending).

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use store::wal::{
    CorruptionKind, FsyncPolicy, SegmentId, Wal, WalConfig, WalError, WalOp, replay_dir,
};

type Point = (String, u32, f64);

/// A replayed point with its segment.
type Replayed = (SegmentId, String, u32, f64);

fn config(dir: &Path, fsync: FsyncPolicy) -> WalConfig {
    let mut c = WalConfig::new(dir);
    c.fsync = fsync;
    c
}

fn open(c: &WalConfig) -> (Wal, Vec<Replayed>) {
    // A child process that another test is spawning at this moment can hold a copy of the
    // lock's file description between its fork and its exec (close-on-exec closes it only
    // then): the directory then looks locked for a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut got = Vec::new();
        match Wal::open(c.clone(), |s, n, t, v| got.push((s, n.to_owned(), t, v))) {
            Ok(wal) => return (wal, got),
            Err(WalError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("cannot open the log: {e}"),
        }
    }
}

fn refs(batch: &[Point]) -> Vec<(&str, u32, f64)> {
    batch.iter().map(|(n, t, v)| (n.as_str(), *t, *v)).collect()
}

fn same_points(got: &[Replayed], want: &[(SegmentId, Point)]) {
    assert_eq!(got.len(), want.len(), "point count");
    for (i, (g, (seg, (n, t, v)))) in got.iter().zip(want).enumerate() {
        assert_eq!((&g.0, &g.1, g.2), (seg, n, *t), "point {i}");
        assert_eq!(g.3.to_bits(), v.to_bits(), "point {i}");
    }
}

/// A small xorshift generator: inputs come from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Realistic points: `servers.hostNNN.cpu.cpuN.user`, a shared timestamp per batch, values
/// that are integers or fractions.
fn batch(rng: &mut Rng, len: usize, names: u64, ts: u32) -> Vec<Point> {
    (0..len)
        .map(|_| {
            let i = rng.below(names);
            let value = match rng.below(4) {
                0 => rng.below(1000) as f64,
                1 => f64::from_bits(rng.next()),
                _ => rng.below(1_000_000) as f64 / 1000.0,
            };
            (format!("servers.host{:03}.cpu.cpu{}.user", i / 8, i % 8), ts, value)
        })
        .collect()
}

fn segment_files(dir: &Path) -> Vec<SegmentId> {
    let mut ids: Vec<SegmentId> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| SegmentId::from_file_name(e.unwrap().file_name().to_str()?))
        .collect();
    ids.sort();
    ids
}

fn segment_path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(id.file_name())
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

// ---- round trips ----------------------------------------------------------------------------

#[test]
fn points_replay_in_order_across_segment_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), FsyncPolicy::Never);
    c.segment_bytes = 2048;
    let (wal, replayed) = open(&c);
    assert!(replayed.is_empty());
    assert_eq!(wal.current_segment(), SegmentId::new(1));
    let mut rng = Rng(7);
    let mut want = Vec::new();
    for i in 0..300 {
        let len = 1 + rng.below(20) as usize;
        let b = batch(&mut rng, len, 60, 1_700_000_000 + i * 60);
        let seg = wal.append(&refs(&b)).unwrap();
        want.extend(b.into_iter().map(|p| (seg, p)));
    }
    let stats = wal.stats();
    assert_eq!(stats.points_appended, want.len() as u64);
    let last = wal.current_segment();
    assert!(last.get() > 5, "{last}");
    wal.shutdown().unwrap();
    assert_eq!(segment_files(dir.path()).last(), Some(&last));

    let (wal, replayed) = open(&c);
    same_points(&replayed, &want);
    let rs = wal.replay_stats();
    assert_eq!(rs.points, want.len() as u64);
    assert_eq!(rs.segments, last.get());
    assert_eq!((rs.torn_bytes, rs.corrupt_bytes, rs.corrupt_regions), (0, 0, 0));
    assert_eq!(wal.current_segment(), last.next());
}

#[test]
fn every_run_adds_to_what_the_next_one_replays() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), FsyncPolicy::Interval(Duration::from_millis(50)));
    let mut rng = Rng(11);
    let mut want = Vec::new();
    for run in 0..4u32 {
        let (wal, replayed) = open(&c);
        same_points(&replayed, &want);
        for i in 0..10 {
            let b = batch(&mut rng, 50, 1000, 1_700_000_000 + run * 1000 + i);
            let seg = wal.append(&refs(&b)).unwrap();
            want.extend(b.into_iter().map(|p| (seg, p)));
        }
        if run % 2 == 0 {
            wal.shutdown().unwrap();
        } else {
            drop(wal); // dropping flushes too
        }
    }
    let (_wal, replayed) = open(&c);
    same_points(&replayed, &want);
}

#[test]
fn runs_that_append_nothing_leave_no_segment() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), FsyncPolicy::default());
    for _ in 0..3 {
        open(&c).0.shutdown().unwrap();
    }
    assert_eq!(segment_files(dir.path()).len(), 1);
    let (wal, _) = open(&c);
    assert_eq!(wal.replay_stats().empty_segments_removed, 1);
    assert_eq!(wal.stats().segments_live, 1);
}

#[test]
fn every_value_and_timestamp_survives_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), FsyncPolicy::Never);
    let values = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        f64::NAN,
        f64::from_bits(0x7FF8_0000_0000_0001),
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        f64::MAX,
        9_007_199_254_740_993.0,
        2f64.powi(63),
        -(2f64.powi(63)),
        1e300,
    ];
    let timestamps = [0, 1, u32::MAX, 1_700_000_000, 0, u32::MAX - 1];
    let mut want = Vec::new();
    let (wal, _) = open(&c);
    for (i, &v) in values.iter().enumerate() {
        let b: Vec<Point> = timestamps.iter().map(|&t| (format!("m{i}.é.ünïcode"), t, v)).collect();
        let seg = wal.append(&refs(&b)).unwrap();
        want.extend(b.into_iter().map(|p| (seg, p)));
    }
    wal.shutdown().unwrap();
    same_points(&open(&c).1, &want);
}

#[test]
fn long_names_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(&config(dir.path(), FsyncPolicy::Never));
    let long = "x".repeat(store::wal::MAX_NAME_BYTES + 1);
    let e = wal.append(&[("ok", 1, 1.0), (&long, 1, 1.0)]).unwrap_err();
    assert!(matches!(e, WalError::NameTooLong { len, .. } if len == long.len()), "{e}");
    let max = "y".repeat(store::wal::MAX_NAME_BYTES);
    wal.append(&[(&max, 2, 2.0)]).unwrap();
    wal.shutdown().unwrap();
    let mut got = Vec::new();
    replay_dir(dir.path(), |_, n, t, _| got.push((n.len(), t))).unwrap();
    assert_eq!(got, [(max.len(), 2)]);
}

// ---- damage ---------------------------------------------------------------------------------

/// Writes batches into one segment, returning the file and the end offset of each record.
fn one_segment(dir: &Path, batches: &[Vec<Point>]) -> (PathBuf, Vec<u64>) {
    let c = config(dir, FsyncPolicy::Never);
    let (wal, _) = open(&c);
    let seg = wal.current_segment();
    let path = segment_path(dir, seg);
    let mut ends = Vec::new();
    for b in batches {
        wal.append(&refs(b)).unwrap();
        wal.sync().unwrap();
        ends.push(fs::metadata(&path).unwrap().len());
    }
    wal.shutdown().unwrap();
    (path, ends)
}

#[test]
fn a_torn_last_record_is_cut_at_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(3);
    let batches: Vec<Vec<Point>> =
        (0..4).map(|i| batch(&mut rng, 12, 30, 1_700_000_000 + i)).collect();
    let (path, ends) = one_segment(dir.path(), &batches);
    let whole: Vec<Point> = batches[..3].concat();
    let (start, end) = (ends[2], ends[3]);
    assert!(end - start > 100);
    for cut in start..end {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let torn = copy.path().join(path.file_name().unwrap());
        fs::OpenOptions::new().write(true).open(&torn).unwrap().set_len(cut).unwrap();
        let c = config(copy.path(), FsyncPolicy::Never);
        let (wal, replayed) = open(&c);
        let names: Vec<Point> = replayed.into_iter().map(|(_, n, t, v)| (n, t, v)).collect();
        assert_eq!(names.len(), whole.len(), "cut at {cut}");
        assert!(
            names.iter().zip(&whole).all(|(a, b)| a.0 == b.0 && a.2.to_bits() == b.2.to_bits())
        );
        let rs = wal.replay_stats();
        assert_eq!(rs.torn_bytes, cut - start, "cut at {cut}");
        assert_eq!(rs.corrupt_regions, 0);
        drop(wal);
        // The tail was cut off the file, so the next open finds nothing wrong.
        assert_eq!(fs::metadata(&torn).unwrap().len(), start);
        let (wal, replayed) = open(&c);
        assert_eq!(replayed.len(), whole.len());
        assert_eq!(wal.replay_stats().torn_bytes, 0);
    }
}

#[test]
fn a_last_record_failing_its_checksum_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(5);
    let batches: Vec<Vec<Point>> =
        (0..3).map(|i| batch(&mut rng, 10, 30, 1_700_000_000 + i)).collect();
    let (path, ends) = one_segment(dir.path(), &batches);
    for at in [ends[1], ends[1] + 5, ends[1] + 11, ends[2] - 1] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let p = copy.path().join(path.file_name().unwrap());
        let mut bytes = fs::read(&p).unwrap();
        bytes[at as usize] ^= 0x40;
        fs::write(&p, &bytes).unwrap();
        let (wal, replayed) = open(&config(copy.path(), FsyncPolicy::Never));
        assert_eq!(replayed.len(), 20, "damage at {at}");
        assert_eq!(wal.replay_stats().torn_bytes, ends[2] - ends[1]);
    }
}

#[test]
fn a_cut_header_of_the_last_segment_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), FsyncPolicy::Never);
    let (wal, _) = open(&c);
    wal.append(&[("a", 1, 1.0)]).unwrap();
    wal.shutdown().unwrap();
    let (wal, _) = open(&c);
    let second = wal.current_segment();
    wal.append(&[("b", 2, 2.0)]).unwrap();
    wal.shutdown().unwrap();
    for cut in 0..24 {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let p = segment_path(copy.path(), second);
        fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(cut).unwrap();
        let (wal, replayed) = open(&config(copy.path(), FsyncPolicy::Never));
        assert_eq!(replayed.len(), 1, "cut at {cut}");
        assert_eq!(replayed[0].1, "a");
        assert_eq!(wal.replay_stats().torn_bytes, cut);
        assert!(!p.exists(), "cut at {cut}: the empty segment stays");
    }
}

#[test]
fn damage_inside_a_segment_costs_one_record() {
    let dir = tempfile::tempdir().unwrap();
    // Every batch uses the same names, all defined by the first record.
    let names = ["a.b.c", "d.e.f", "g.h.i"];
    let batches: Vec<Vec<Point>> = (0..5)
        .map(|i| names.iter().map(|n| (n.to_string(), 100 + i, f64::from(i))).collect())
        .collect();
    let (path, ends) = one_segment(dir.path(), &batches);
    let mut bytes = fs::read(&path).unwrap();
    // Damage the third record's checksum.
    bytes[ends[1] as usize + 9] ^= 0xFF;
    fs::write(&path, &bytes).unwrap();
    // Another segment after it, so the damaged one is not the last.
    let c = config(dir.path(), FsyncPolicy::Never);
    let (wal, replayed) = open(&c);
    let ts: Vec<u32> = replayed.iter().map(|p| p.2).collect();
    assert_eq!(ts, [100, 100, 100, 101, 101, 101, 103, 103, 103, 104, 104, 104]);
    let rs = wal.replay_stats().clone();
    assert_eq!(rs.corrupt_regions, 1);
    let c0 = &rs.corruptions[0];
    assert_eq!((c0.offset, c0.len, c0.kind), (ends[1], ends[2] - ends[1], CorruptionKind::Record));
    assert_eq!(c0.path, path);
    assert!(c0.to_string().contains("damaged record at byte"), "{c0}");
    assert_eq!(rs.torn_bytes, 0);
    wal.append(&[("later", 1, 1.0)]).unwrap();
    wal.shutdown().unwrap();
    // Not the last segment any more: the same damage is skipped, not cut.
    let (wal, replayed) = open(&c);
    assert_eq!(replayed.len(), 13);
    assert_eq!(wal.replay_stats().corrupt_regions, 1);
    assert_eq!(fs::metadata(&path).unwrap().len(), ends[4]);
}

#[test]
fn names_defined_in_a_damaged_record_are_lost_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let batches = vec![
        vec![("old".to_owned(), 1, 1.0)],
        vec![("new".to_owned(), 2, 2.0), ("old".to_owned(), 2, 2.0)],
        vec![("new".to_owned(), 3, 3.0), ("old".to_owned(), 3, 3.0), ("newer".to_owned(), 3, 3.0)],
    ];
    let (path, ends) = one_segment(dir.path(), &batches);
    let mut bytes = fs::read(&path).unwrap();
    bytes[ends[0] as usize + 14] ^= 1; // inside the second record's payload
    fs::write(&path, &bytes).unwrap();
    let mut got = Vec::new();
    let rs = replay_dir(dir.path(), |_, n, t, _| got.push((n.to_owned(), t))).unwrap();
    assert_eq!(got, [("old".to_owned(), 1), ("old".to_owned(), 3), ("newer".to_owned(), 3)]);
    assert_eq!(rs.points_without_name, 1);
    assert_eq!(rs.corrupt_regions, 1);
}

#[test]
fn random_damage_never_panics_nor_replays_a_point_that_was_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), FsyncPolicy::Never);
    c.segment_bytes = 4096;
    let mut rng = Rng(99);
    let mut written: HashSet<(String, u32, u64)> = HashSet::new();
    let (wal, _) = open(&c);
    for i in 0..120 {
        let len = 1 + rng.below(30) as usize;
        let b = batch(&mut rng, len, 200, 1_700_000_000 + i);
        wal.append(&refs(&b)).unwrap();
        written.extend(b.into_iter().map(|(n, t, v)| (n, t, v.to_bits())));
    }
    wal.shutdown().unwrap();
    let files = segment_files(dir.path());
    assert!(files.len() > 3);
    let total: usize = {
        let mut n = 0;
        replay_dir(dir.path(), |_, _, _, _| n += 1).unwrap();
        n
    };
    for round in 0..40 {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let damages = 1 + rng.below(4);
        for _ in 0..damages {
            let f = segment_path(copy.path(), files[rng.below(files.len() as u64) as usize]);
            let mut bytes = fs::read(&f).unwrap();
            match rng.below(4) {
                // Flip bits, or overwrite a run with garbage or zeros.
                0 | 1 => {
                    // Past the header: a damaged header is skipped whole, tested elsewhere.
                    let at = 24 + rng.below(bytes.len() as u64 - 24) as usize;
                    bytes[at] ^= 1 << rng.below(8);
                }
                2 => {
                    let at = 24 + rng.below(bytes.len() as u64 - 24) as usize;
                    let len = (1 + rng.below(64) as usize).min(bytes.len() - at);
                    for b in &mut bytes[at..at + len] {
                        *b = rng.next() as u8;
                    }
                }
                _ => {
                    let at = 24 + rng.below(bytes.len() as u64 - 24) as usize;
                    let len = (1 + rng.below(200) as usize).min(bytes.len() - at);
                    bytes[at..at + len].fill(0);
                }
            }
            fs::write(&f, &bytes).unwrap();
        }
        let mut replayed = 0;
        let check = |n: &str, t: u32, v: f64| {
            assert!(
                written.contains(&(n.to_owned(), t, v.to_bits())),
                "round {round}: {n} {t} {v}"
            );
        };
        let rs = replay_dir(copy.path(), |_, n, t, v| {
            check(n, t, v);
            replayed += 1;
        })
        .unwrap();
        assert!(replayed < total, "round {round}: damage went unnoticed");
        assert!(rs.corrupt_regions + u64::from(rs.torn_bytes > 0) >= 1, "round {round}: {rs:?}");
        // Opening it for writing works too (and cuts a torn tail).
        let (wal, again) = open(&config(copy.path(), FsyncPolicy::Never));
        assert_eq!(again.len(), replayed, "round {round}");
        for (_, n, t, v) in &again {
            check(n, *t, *v);
        }
        wal.shutdown().unwrap();
    }
}

#[test]
fn a_damaged_header_skips_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), FsyncPolicy::Never);
    c.segment_bytes = 30; // one append a segment
    let (wal, _) = open(&c);
    for i in 0..3 {
        wal.append(&[("a.b", i, 1.0), ("c.d", i, 2.0), ("e.f", i, 3.0)]).unwrap();
    }
    wal.shutdown().unwrap();
    assert_eq!(segment_files(dir.path()).len(), 3);
    let p = segment_path(dir.path(), SegmentId::new(2));
    let mut bytes = fs::read(&p).unwrap();
    bytes[17] ^= 1; // the segment id
    fs::write(&p, &bytes).unwrap();
    let mut ts = Vec::new();
    let rs = replay_dir(dir.path(), |_, _, t, _| ts.push(t)).unwrap();
    assert_eq!(ts, [0, 0, 0, 2, 2, 2]);
    assert_eq!(rs.corruptions[0].kind, CorruptionKind::Header);
    assert_eq!(rs.corruptions[0].len, bytes.len() as u64);
}

#[test]
fn a_damaged_header_of_the_last_segment_is_kept_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), FsyncPolicy::Never);
    let (wal, _) = open(&c);
    wal.append(&[("a", 1, 1.0)]).unwrap();
    wal.shutdown().unwrap();
    let p = segment_path(dir.path(), SegmentId::new(1));
    let mut bytes = fs::read(&p).unwrap();
    bytes[21] ^= 1; // the header's checksum
    fs::write(&p, &bytes).unwrap();
    let (wal, replayed) = open(&c);
    assert!(replayed.is_empty());
    let rs = wal.replay_stats();
    assert_eq!((rs.torn_bytes, rs.corrupt_regions), (0, 1));
    assert_eq!(rs.corruptions[0].kind, CorruptionKind::Header);
    assert_eq!(fs::read(&p).unwrap(), bytes, "the damaged segment was changed");
}

#[test]
fn a_foreign_file_or_a_newer_format_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), FsyncPolicy::Never);
    let (wal, _) = open(&c);
    wal.append(&[("a", 1, 1.0)]).unwrap();
    wal.shutdown().unwrap();
    let p = segment_path(dir.path(), SegmentId::new(1));
    let good = fs::read(&p).unwrap();

    let mut newer = good.clone();
    newer[8] = 2;
    fs::write(&p, &newer).unwrap();
    let e = Wal::open(c.clone(), |_, _, _, _| {}).unwrap_err();
    assert!(
        matches!(&e, WalError::UnsupportedVersion { path, found: 2, supported: 1 } if *path == p),
        "{e:?}"
    );
    assert!(e.to_string().contains(&p.display().to_string()), "{e}");
    assert!(e.to_string().contains("version 2"), "{e}");

    fs::write(&p, b"this is not a segment at all, but it is long enough").unwrap();
    let e = Wal::open(c.clone(), |_, _, _, _| {}).unwrap_err();
    assert!(matches!(&e, WalError::BadMagic { path } if *path == p), "{e:?}");
    assert!(e.to_string().contains(&p.display().to_string()), "{e}");

    // Files not named like segments are left alone.
    fs::write(&p, &good).unwrap();
    fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    let (_wal, replayed) = open(&c);
    assert_eq!(replayed.len(), 1);
}

#[test]
fn leftover_temporary_segments_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(format!("{}.tmp", SegmentId::new(5).file_name()));
    fs::write(&tmp, b"GRAPH").unwrap();
    let (wal, replayed) = open(&config(dir.path(), FsyncPolicy::Never));
    assert!(replayed.is_empty());
    assert!(!tmp.exists());
    assert_eq!(wal.current_segment(), SegmentId::new(1));
}

#[test]
fn a_second_log_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), FsyncPolicy::Never);
    let (wal, _) = open(&c);
    let e = Wal::open(c.clone(), |_, _, _, _| {}).unwrap_err();
    assert!(matches!(&e, WalError::Locked { path } if path.ends_with("LOCK")), "{e:?}");
    wal.shutdown().unwrap();
    open(&c);
}

// ---- trimming -------------------------------------------------------------------------------

#[test]
fn release_before_removes_exactly_the_older_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), FsyncPolicy::Interval(Duration::from_millis(20)));
    c.segment_bytes = 200;
    let (wal, _) = open(&c);
    let mut segs = BTreeSet::new();
    let mut i = 0;
    while segs.len() < 8 {
        segs.insert(wal.append(&[("x.y.z", i, f64::from(i)), ("a.b.c", i, 0.5)]).unwrap());
        i += 1;
    }
    wal.sync().unwrap();
    let current = wal.current_segment();
    assert_eq!(segment_files(dir.path()), segs.iter().copied().collect::<Vec<_>>());
    assert_eq!(wal.stats().segments_live, 8);

    assert_eq!(wal.release_before(SegmentId::new(4)).unwrap(), 3);
    let left: Vec<u64> = segment_files(dir.path()).iter().map(|s| s.get()).collect();
    assert_eq!(left, (4..=current.get()).collect::<Vec<_>>());
    assert_eq!(wal.release_before(SegmentId::new(2)).unwrap(), 0);
    assert_eq!(wal.stats().segments_released, 3);

    // Past the current segment: everything older goes, the current one stays.
    assert_eq!(wal.release_before(SegmentId::new(1000)).unwrap(), 4);
    assert_eq!(segment_files(dir.path()), [current]);
    assert_eq!(wal.stats().segments_live, 1);
    // ... and later segments are not released in advance.
    let mut i = 0;
    while wal.current_segment() == current {
        wal.append(&[("x.y.z", 1000 + i, 1.0)]).unwrap();
        i += 1;
    }
    wal.sync().unwrap();
    assert_eq!(segment_files(dir.path()), [current, wal.current_segment()]);
    wal.shutdown().unwrap();
    // The points of the kept segments still replay.
    let (_, replayed) = open(&c);
    assert!(replayed.iter().all(|p| p.0 >= current));
    assert_eq!(replayed.last().unwrap().2, 1000 + i - 1);
}

#[test]
fn a_segment_released_while_the_writer_finishes_it_is_removed_when_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), FsyncPolicy::Interval(Duration::from_secs(3600)));
    c.segment_bytes = 64;
    let (wal, _) = open(&c);
    // Nothing is written yet (the interval is an hour): the first segment is still open in
    // the writer when the append goes to the second.
    wal.append(&[("first.segment.name", 1, 1.0), ("another.name.here", 1, 2.0)]).unwrap();
    let second = wal.append(&[("second", 2, 2.0)]).unwrap();
    assert_eq!(second, SegmentId::new(2));
    assert_eq!(wal.release_before(second).unwrap(), 0);
    wal.sync().unwrap();
    assert_eq!(segment_files(dir.path()), [second]);
    assert_eq!(wal.stats().segments_released, 1);
}

// ---- concurrency and modes ------------------------------------------------------------------

#[test]
fn concurrent_appenders_keep_each_threads_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), FsyncPolicy::Interval(Duration::from_millis(10)));
    c.segment_bytes = 16 << 10;
    c.buffer_bytes = 8 << 10;
    let (wal, _) = open(&c);
    let wal = Arc::new(wal);
    let threads = 4u32;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let mut segs = Vec::new();
                for i in 0..400u32 {
                    let b: Vec<Point> = (0..10u32)
                        .map(|j| {
                            (format!("thread{t}.metric{}", (i + j) % 37), i * 10 + j, f64::from(t))
                        })
                        .collect();
                    segs.push(wal.append(&refs(&b)).unwrap());
                }
                segs
            })
        })
        .collect();
    let segs: Vec<Vec<SegmentId>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let stats = wal.stats();
    assert_eq!(stats.points_appended, u64::from(threads) * 4000);
    Arc::try_unwrap(wal).unwrap().shutdown().unwrap();

    let (_, replayed) = open(&c);
    assert_eq!(replayed.len(), threads as usize * 4000);
    for t in 0..threads {
        let mine: Vec<&Replayed> = replayed.iter().filter(|p| p.3 == f64::from(t)).collect();
        let ts: Vec<u32> = mine.iter().map(|p| p.2).collect();
        assert_eq!(ts, (0..4000).collect::<Vec<_>>(), "thread {t}");
        for (k, p) in mine.iter().enumerate() {
            assert_eq!(p.0, segs[t as usize][k / 10], "thread {t} point {k}");
            assert_eq!(p.1, format!("thread{t}.metric{}", (k / 10 + k % 10) % 37));
        }
    }
}

#[test]
fn always_mode_points_are_on_disk_when_append_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(&config(dir.path(), FsyncPolicy::Always));
    for i in 0..20u32 {
        wal.append(&[("durable.point", i, f64::from(i))]).unwrap();
        // Read back through another handle, without the writer's help.
        let mut ts = Vec::new();
        replay_dir(dir.path(), |_, _, t, _| ts.push(t)).unwrap();
        assert_eq!(ts, (0..=i).collect::<Vec<_>>());
        assert!(wal.stats().fsyncs > u64::from(i));
    }
}

#[test]
fn always_mode_appenders_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(&config(dir.path(), FsyncPolicy::Always));
    let wal = Arc::new(wal);
    let handles: Vec<_> = (0..4u32)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..50u32 {
                    wal.append(&[("group.commit", t * 1000 + i, 1.0)]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.records_appended, 200);
    // One fsync per append at most; usually far fewer (printed for the curious).
    assert!(stats.fsyncs <= 200, "{stats:?}");
    eprintln!("200 appends from 4 threads in Always mode: {} fsyncs", stats.fsyncs);
}

#[test]
fn interval_mode_writes_at_the_interval_or_on_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(&config(dir.path(), FsyncPolicy::Interval(Duration::from_secs(3600))));
    wal.append(&[("lazy", 1, 1.0)]).unwrap();
    let count = || {
        let mut n = 0;
        replay_dir(dir.path(), |_, _, _, _| n += 1).unwrap();
        n
    };
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(count(), 0, "written before the interval");
    wal.sync().unwrap();
    assert_eq!(count(), 1);
    let fsyncs = wal.stats().fsyncs;
    assert!(fsyncs >= 1);
    wal.sync().unwrap(); // nothing new: no fsync
    assert_eq!(wal.stats().fsyncs, fsyncs);

    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(&config(dir.path(), FsyncPolicy::Interval(Duration::from_millis(100))));
    std::thread::sleep(Duration::from_millis(150));
    let start = Instant::now();
    wal.append(&[("prompt", 1, 1.0)]).unwrap();
    while wal.stats().fsyncs == 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "never fsynced");
        std::thread::sleep(Duration::from_millis(5));
    }
    let at = start.elapsed();
    assert!(at < Duration::from_millis(1000), "fsynced after {at:?}");
}

#[test]
fn a_small_buffer_makes_appenders_wait_not_grow() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), FsyncPolicy::Interval(Duration::from_secs(3600)));
    c.buffer_bytes = 4096;
    let (wal, _) = open(&c);
    let mut rng = Rng(1);
    let mut n = 0;
    let mut max_buffered = 0;
    for i in 0..500 {
        let b = batch(&mut rng, 20, 100, i);
        wal.append(&refs(&b)).unwrap();
        n += b.len();
        max_buffered = max_buffered.max(wal.stats().bytes_buffered);
    }
    // Each append may pass the cap by one batch, and a batch taken by the writer is still
    // counted until written.
    assert!(max_buffered <= 2 * 4096 + 2 * 1024, "{max_buffered}");
    wal.shutdown().unwrap();
    assert_eq!(open(&c).1.len(), n);
}

#[test]
fn open_and_shutdown_many_times_leaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), FsyncPolicy::Interval(Duration::from_millis(5)));
    let threads_before = thread_count();
    for i in 0..20u32 {
        let (wal, replayed) = open(&c);
        assert_eq!(replayed.len(), i as usize);
        wal.append(&[("again", i, 1.0)]).unwrap();
        wal.shutdown().unwrap();
    }
    assert!(thread_count() <= threads_before + 1, "writer threads left running");
    assert_eq!(segment_files(dir.path()).len(), 20);
}

fn thread_count() -> usize {
    fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

// ---- child processes ------------------------------------------------------------------------

/// Names the helper test a re-invoked test binary should run; other runs skip the helpers.
const HELPER_ENV: &str = "STORE_WAL_TEST_HELPER";

fn is_helper(name: &str) -> bool {
    std::env::var(HELPER_ENV).is_ok_and(|v| v == name)
}

/// Runs the hidden helper test `name` in a fresh copy of this test binary, after the bash
/// commands `setup` (ulimits).
fn helper_command(name: &str, setup: &str, envs: &[(&str, OsString)]) -> Command {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("{setup}; exec \"$0\" \"$@\""))
        .arg(exe)
        .args([&format!("wal::{name}"), "--exact", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, name)
        .envs(envs.iter().map(|(k, v)| (k, v)));
    cmd
}

fn run_helper(name: &str, setup: &str, envs: &[(&str, OsString)]) -> Output {
    helper_command(name, setup, envs).output().expect("run bash")
}

fn helper_policy() -> FsyncPolicy {
    match std::env::var("WAL_TEST_MODE").as_deref() {
        Ok("always") => FsyncPolicy::Always,
        _ => FsyncPolicy::Interval(Duration::from_millis(200)),
    }
}

/// The points of batch `k` of the child helpers: 100 points whose values say `k`.
fn child_batch(k: u32) -> Vec<Point> {
    (0..100u32)
        .map(|j| {
            let i = (k * 100 + j) % 5000;
            (
                format!("servers.host{:03}.cpu.cpu{}.user", i / 8, i % 8),
                1_700_000_000 + k,
                f64::from(k * 100 + j),
            )
        })
        .collect()
}

/// Checks that `replayed` is batches 0, 1, 2, ... of [`child_batch`], whole.
fn check_child_batches(replayed: &[Replayed], mode: &str) {
    for (k, got) in replayed.chunks(100).enumerate() {
        let want = child_batch(k as u32);
        assert_eq!(got.len(), want.len(), "{mode}: batch {k} replayed in part");
        for (p, w) in got.iter().zip(&want) {
            assert_eq!((&p.1, p.2, p.3), (&w.0, w.1, w.2), "{mode}: batch {k}");
        }
    }
}

/// Child side of `a_full_disk_fails_appends_and_loses_no_acknowledged_point`.
#[test]
fn helper_append_until_the_disk_is_full() {
    if !is_helper("helper_append_until_the_disk_is_full") {
        return;
    }
    let dir = PathBuf::from(std::env::var_os("WAL_TEST_DIR").expect("dir"));
    let wal = Wal::open(config(&dir, helper_policy()), |_, _, _, _| {}).unwrap();
    println!(); // after the harness's `test name ... `
    let mut acked = 0;
    let mut error = None;
    for k in 0..100_000 {
        match wal.append(&refs(&child_batch(k))) {
            Ok(_) => acked += 1,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    println!("ACKED {acked}");
    let e = error.expect("the disk never filled");
    println!("APPEND-ERROR: {e}");
    if let WalError::Io { op, source, .. } = &e {
        println!("OP: {op:?} ERRNO: {:?}", source.raw_os_error());
    }
    match wal.sync() {
        Ok(()) => println!("SYNC-OK"),
        Err(e) => println!("SYNC-ERROR: {e}"),
    }
    match wal.shutdown() {
        Ok(()) => println!("SHUTDOWN-OK"),
        Err(e) => println!("SHUTDOWN-ERROR: {e}"),
    }
}

#[test]
fn a_full_disk_fails_appends_and_loses_no_acknowledged_point() {
    for mode in ["always", "interval"] {
        let dir = tempfile::tempdir().unwrap();
        let out = run_helper(
            "helper_append_until_the_disk_is_full",
            // SIGXFSZ ignored, so writes past the limit fail with EFBIG instead of killing.
            "trap '' XFSZ; ulimit -f 64",
            &[("WAL_TEST_DIR", dir.path().into()), ("WAL_TEST_MODE", mode.into())],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{mode}: child failed: {stdout}\n{stderr}");
        let seg = segment_path(dir.path(), SegmentId::new(1));
        assert!(
            stdout.contains(&format!("APPEND-ERROR: cannot write {}: ", seg.display())),
            "{mode}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("OP: {:?} ERRNO: Some(27)", WalOp::Write)),
            "{mode}: {stdout}"
        );
        assert!(stdout.contains("SYNC-ERROR: cannot write"), "{mode}: {stdout}");
        assert!(stdout.contains("SHUTDOWN-ERROR: cannot write"), "{mode}: {stdout}");
        let acked: u32 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("ACKED "))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{mode}: no ACKED line: {stdout}\n{stderr}"));
        assert!(acked > 10, "{mode}: {stdout}");

        // Without the limit, every acknowledged batch replays (in Interval mode the ones
        // appended before the failure was seen are only in the child's memory: lost with it,
        // as any crash within the interval would lose them).
        let (_, replayed) = open(&config(dir.path(), FsyncPolicy::Never));
        let batches = replayed.len() / 100;
        assert_eq!(replayed.len() % 100, 0, "{mode}: partial batch replayed");
        check_child_batches(&replayed, mode);
        if mode == "always" {
            assert!(batches >= acked as usize, "{mode}: {batches} replayed, {acked} acknowledged");
        }
        assert!(fs::metadata(&seg).unwrap().len() <= 64 * 1024);
        eprintln!("{mode}: {acked} batches acknowledged, {batches} replayed after the disk filled");
    }
}

/// Child side of the crash tests: appends batches until killed, printing `ACK k` after
/// batch `k`'s append returned.
#[test]
fn helper_append_until_killed() {
    if !is_helper("helper_append_until_killed") {
        return;
    }
    let dir = PathBuf::from(std::env::var_os("WAL_TEST_DIR").expect("dir"));
    let mut c = config(&dir, helper_policy());
    c.segment_bytes = 256 << 10; // rotations happen during the run
    let wal = Wal::open(c, |_, _, _, _| {}).unwrap();
    println!(); // after the harness's `test name ... `
    for k in 0.. {
        wal.append(&refs(&child_batch(k))).unwrap();
        println!("ACK {k}");
        if k % 4 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Kills an appending child with SIGKILL after `run`, then checks that every batch it
/// acknowledged more than `window` before the kill replays, whole and in order.
fn crash_and_replay(mode: &str, run: Duration, window: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = helper_command(
        "helper_append_until_killed",
        "true",
        &[("WAL_TEST_DIR", dir.path().into()), ("WAL_TEST_MODE", mode.into())],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(k) = line.strip_prefix("ACK ").and_then(|k| k.parse::<u32>().ok()) {
                // The time the parent saw the ack is after the append returned.
                if tx.send((k, Instant::now())).is_err() {
                    break;
                }
            }
        }
    });
    let start = Instant::now();
    let mut acks = Vec::new();
    while start.elapsed() < run {
        if let Ok(a) = rx.recv_timeout(Duration::from_millis(10)) {
            acks.push(a);
        }
    }
    child.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    child.wait().unwrap();
    reader.join().unwrap();
    acks.extend(rx.try_iter().filter(|&(_, at)| at <= killed));
    let must_have = acks.iter().filter(|&&(_, at)| at + window <= killed).map(|&(k, _)| k).max();

    let (wal, replayed) = open(&config(dir.path(), FsyncPolicy::Never));
    assert_eq!(replayed.len() % 100, 0, "{mode}: a partial batch replayed");
    let batches = (replayed.len() / 100) as u32;
    // Whole batches, in order, with their values: a prefix of what was appended.
    check_child_batches(&replayed, mode);
    let acked = acks.iter().map(|&(k, _)| k + 1).max().unwrap_or(0);
    assert!(acked > 20, "{mode}: the child acknowledged only {acked} batches");
    if let Some(k) = must_have {
        assert!(
            batches > k,
            "{mode}: batch {k} was acknowledged {window:?} before the kill but only {batches} replayed"
        );
    }
    let rs = wal.replay_stats();
    assert_eq!(rs.corrupt_regions, 0, "{mode}: {rs:?}");
    // How long before the kill the first lost batch was acknowledged.
    let lost_window = acks
        .iter()
        .filter(|&&(k, _)| k >= batches)
        .map(|&(_, at)| killed - at)
        .max()
        .unwrap_or_default();
    eprintln!(
        "{mode}: killed after {acked} acknowledged batches; {batches} replayed; lost the last \
         {lost_window:?} of acknowledgements; torn bytes {}; {} segments",
        rs.torn_bytes, rs.segments
    );
}

#[test]
fn a_process_killed_mid_stream_loses_at_most_the_interval() {
    // 200 ms interval, and slack for a loaded 2-core machine (the child's writer thread must
    // get the CPU to write).
    for run in [700, 1100] {
        crash_and_replay("interval", Duration::from_millis(run), Duration::from_millis(200 + 600));
    }
}

#[test]
fn a_process_killed_in_always_mode_loses_no_acknowledged_point() {
    crash_and_replay("always", Duration::from_millis(800), Duration::ZERO);
}

#[test]
fn rotate_then_release_removes_the_current_segment_too() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), FsyncPolicy::Interval(Duration::from_millis(50)));
    let (wal, _) = open(&c);
    let batch: Vec<Point> = vec![("a.b".into(), 100, 1.0), ("a.c".into(), 100, 2.0)];
    let first = wal.append(&refs(&batch)).unwrap();
    let next = wal.rotate().unwrap();
    assert!(next > first);
    assert_eq!(wal.rotate().unwrap(), next, "nothing appended since: no new segment");
    wal.sync().unwrap();
    wal.release_before(next).unwrap();
    wal.shutdown().unwrap();
    assert!(
        segment_files(dir.path()).iter().all(|&s| s >= next),
        "{:?}",
        segment_files(dir.path())
    );
    let (wal, replayed) = open(&c);
    assert!(replayed.is_empty(), "{replayed:?}");
    // Appends after a rotation go to the new segment and replay.
    let later = wal.append(&refs(&batch)).unwrap();
    let after = wal.rotate().unwrap();
    wal.append(&refs(&batch)).unwrap();
    wal.release_before(after).unwrap();
    wal.shutdown().unwrap();
    let (_wal, replayed) = open(&c);
    assert_eq!(replayed.len(), 2, "only the batch after the rotation (segment {later:?} went)");
}

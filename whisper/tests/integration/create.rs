//! Creating files and sharing them: a failed create leaves nothing behind (a full disk is
//! simulated with `RLIMIT_FSIZE` in a child process), an existing file is never touched,
//! `OpenOptions::lock` takes `flock` around writes only, and memory-mapped handles read what
//! `pread` handles read, including writes made through other handles.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use whisper::{
    AggregationMethod, Allocation, CreateOptions, Error, MemStorage, OpenOptions, Retention,
    Whisper,
};

use crate::differential::{archives, value};

const NOW: i64 = 1_700_000_000;

const ALLOCATIONS: [Allocation; 4] =
    [Allocation::Zeroed, Allocation::WriteZeros, Allocation::Sparse, Allocation::Fallocate];

// ---- child processes ----------------------------------------------------------------------

/// Names the helper test a re-invoked test binary should run; other runs skip the helpers.
pub(crate) const HELPER_ENV: &str = "WHISPER_TEST_HELPER";

/// Runs the hidden helper test `name` (a `#[test]` that does nothing unless [`HELPER_ENV`]
/// names it) in a fresh copy of this test binary, after the bash commands `setup` (ulimits).
pub(crate) fn run_helper(name: &str, setup: &str, envs: &[(&str, OsString)]) -> Output {
    let exe = std::env::current_exe().expect("test binary");
    Command::new("bash")
        .arg("-c")
        .arg(format!("{setup}; exec \"$0\" \"$@\""))
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, name)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run bash")
}

/// Whether this process is a child started by [`run_helper`] for `name`.
pub(crate) fn is_helper(name: &str) -> bool {
    std::env::var(HELPER_ENV).is_ok_and(|v| v == name)
}

const CREATE_HELPER: &str = "create::helper_create_under_a_file_size_limit";

/// Child side of `a_failed_create_leaves_no_file_behind`: creates the file named by
/// `WHISPER_TEST_PATH` with the allocation `WHISPER_TEST_ALLOCATION` and reports.
#[test]
fn helper_create_under_a_file_size_limit() {
    if !is_helper(CREATE_HELPER) {
        return;
    }
    let path = PathBuf::from(std::env::var_os("WHISPER_TEST_PATH").expect("path"));
    let allocation = std::env::var("WHISPER_TEST_ALLOCATION").expect("allocation");
    let allocation =
        ALLOCATIONS.into_iter().find(|a| format!("{a:?}") == allocation).expect("known allocation");
    // 240 KB, more than the 100 KiB the parent allows.
    let result =
        CreateOptions::new().allocation(allocation).create(&path, &[Retention::new(60, 20_000)]);
    match &result {
        Ok(_) => println!("CREATE-OK"),
        Err(e) => {
            println!("CREATE-ERROR: {e}");
            if let Error::Io { source, .. } = e {
                println!("ERRNO: {:?}", source.raw_os_error());
            }
        }
    }
    println!("EXISTS-AFTER: {}", path.exists());
}

#[test]
fn a_failed_create_leaves_no_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    for allocation in ALLOCATIONS {
        let path = dir.path().join(format!("{allocation:?}.wsp"));
        let out = run_helper(
            CREATE_HELPER,
            // SIGXFSZ ignored, so writes past the limit fail with EFBIG instead of killing.
            "trap '' XFSZ; ulimit -f 100",
            &[
                ("WHISPER_TEST_PATH", path.clone().into_os_string()),
                ("WHISPER_TEST_ALLOCATION", format!("{allocation:?}").into()),
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{allocation:?}: child failed: {stdout}\n{stderr}");
        assert!(
            stdout.contains(&format!("CREATE-ERROR: {}: ", path.display())),
            "{allocation:?}: the create did not fail with an error naming the file: {stdout}"
        );
        assert!(stdout.contains("ERRNO: Some(27)"), "{allocation:?}: not EFBIG: {stdout}");
        assert!(stdout.contains("EXISTS-AFTER: false"), "{allocation:?}: {stdout}");
        assert!(!path.exists(), "{allocation:?}: {} was left behind", path.display());

        // Without the limit the same create succeeds: the limit is what made it fail.
        CreateOptions::new()
            .allocation(allocation)
            .create(&path, &[Retention::new(60, 20_000)])
            .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 28 + 240_000);
    }
}

// ---- existing files -----------------------------------------------------------------------

#[test]
fn create_refuses_an_existing_file_without_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("existing.wsp");
    let mut w = whisper::create(&existing, &[Retention::new(60, 10)]).unwrap();
    w.update(4.0, None, NOW).unwrap();
    drop(w);
    let other = dir.path().join("not-whisper.wsp");
    std::fs::write(&other, b"keep me").unwrap();
    let empty = dir.path().join("empty.wsp");
    std::fs::write(&empty, b"").unwrap();

    for path in [&existing, &other, &empty] {
        let before = std::fs::read(path).unwrap();
        let modified = std::fs::metadata(path).unwrap().modified().unwrap();
        for allocation in ALLOCATIONS {
            for lock in [false, true] {
                let e = CreateOptions::new()
                    .allocation(allocation)
                    .lock(lock)
                    .aggregation_method(AggregationMethod::Sum)
                    .create(path, &[Retention::new(1, 100)])
                    .unwrap_err();
                assert!(matches!(&e, Error::AlreadyExists { path: p } if p == path), "{e:?}");
                assert_eq!(e.to_string(), format!("File {} already exists!", path.display()));
            }
        }
        assert_eq!(&std::fs::read(path).unwrap(), &before, "{}", path.display());
        assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), modified);
    }
}

// ---- locking ------------------------------------------------------------------------------

fn small_file(dir: &Path) -> PathBuf {
    let path = dir.join("locked.wsp");
    whisper::create(&path, &[Retention::new(60, 10)]).unwrap();
    path
}

/// Takes an exclusive `flock` on `path` through a descriptor of its own.
fn hold_lock(path: &Path) -> File {
    let f = File::open(path).unwrap();
    f.lock().unwrap();
    f
}

#[test]
fn a_locking_handle_waits_for_the_lock_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = small_file(dir.path());
    let before = std::fs::read(&path).unwrap();
    let holder = hold_lock(&path);

    let (tx, rx) = mpsc::channel();
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let mut w = OpenOptions::new().write(true).lock(true).open(&writer_path).unwrap();
        let r = w.update(7.0, Some(NOW - 60), NOW);
        tx.send(()).unwrap();
        r
    });
    // The write cannot finish while we hold the lock...
    assert_eq!(rx.recv_timeout(Duration::from_millis(300)), Err(mpsc::RecvTimeoutError::Timeout));
    assert_eq!(std::fs::read(&path).unwrap(), before, "written without the lock");
    // ...and does once we let go.
    holder.unlock().unwrap();
    rx.recv_timeout(Duration::from_secs(30)).expect("the writer finishes after the unlock");
    writer.join().unwrap().unwrap();
    let s = whisper::fetch(&path, NOW - 120, None, NOW).unwrap().unwrap();
    assert_eq!(s.values, [Some(7.0), None]);
}

#[test]
fn handles_release_the_lock_after_each_write_and_reads_take_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = small_file(dir.path());
    let mut w = OpenOptions::new().write(true).lock(true).open(&path).unwrap();
    w.update_many(&[(NOW - 60, 1.0)], NOW).unwrap();
    w.set_aggregation(Some(AggregationMethod::Max), None).unwrap();
    // The handle is still open, but does not hold the lock between operations.
    let probe = File::open(&path).unwrap();
    probe.try_lock().expect("lock free between writes");

    // While someone else holds it, reads go ahead (whisper.py's reads take no lock), and so do
    // writes through a handle that does not lock.
    let mut reader = OpenOptions::new().lock(true).open(&path).unwrap();
    let s = reader.fetch(NOW - 120, None, NOW).unwrap().unwrap();
    assert_eq!(s.values, [Some(1.0), None]);
    let mut unlocked = OpenOptions::new().write(true).open(&path).unwrap();
    unlocked.update(2.0, Some(NOW), NOW).unwrap();
    probe.unlock().unwrap();

    // A locking create releases its lock too.
    let created = dir.path().join("created.wsp");
    let _handle =
        CreateOptions::new().lock(true).create(&created, &[Retention::new(60, 10)]).unwrap();
    File::open(&created).unwrap().try_lock().expect("create released its lock");
}

// ---- memory maps ------------------------------------------------------------------------------

#[test]
fn writes_through_a_handle_are_seen_by_an_mmap_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.wsp");
    whisper::create(&path, &[Retention::new(60, 10), Retention::new(300, 10)]).unwrap();
    let mut mapped = OpenOptions::new().mmap(true).open(&path).unwrap();
    let mut writer = OpenOptions::new().write(true).open(&path).unwrap();
    assert_eq!(mapped.fetch(NOW - 300, None, NOW).unwrap().unwrap().values, [None; 5]);

    writer.update_many(&[(NOW - 240, 1.0), (NOW - 180, 2.0), (NOW - 120, 3.0)], NOW).unwrap();
    let s = mapped.fetch(NOW - 300, None, NOW).unwrap().unwrap();
    assert_eq!(s.values, [Some(1.0), Some(2.0), Some(3.0), None, None]);

    // A header change made elsewhere is seen at the next operation.
    writer.set_aggregation(Some(AggregationMethod::Last), Some(0.0)).unwrap();
    assert_eq!(mapped.info().unwrap().aggregation_method(), AggregationMethod::Last);

    // A handle that maps and writes reads its own writes.
    let mut both = OpenOptions::new().write(true).mmap(true).open(&path).unwrap();
    both.update(9.0, Some(NOW - 60), NOW).unwrap();
    let s = both.fetch(NOW - 300, None, NOW).unwrap().unwrap();
    assert_eq!(s.values, [Some(1.0), Some(2.0), Some(3.0), Some(9.0), None]);
    assert_eq!(mapped.fetch(NOW - 300, None, NOW).unwrap().unwrap().values, s.values);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mmap_handles_read_what_pread_handles_read(
        archives in archives(),
        batches in prop::collection::vec(
            (0i64..500, prop::collection::vec((0i64..5000, value()), 1..40)), 1..5),
        fetches in prop::collection::vec((0i64..6000, prop::option::of(-10i64..6000)), 1..20),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.wsp");
        let mut w = CreateOptions::new().x_files_factor(0.0).create(&path, &archives).unwrap();
        let mut now = NOW;
        for (advance, points) in &batches {
            now += advance;
            let points: Vec<(i64, f64)> = points.iter().map(|&(a, v)| (now - a, v)).collect();
            w.update_many(&points, now).unwrap();
        }
        drop(w);
        let mut pread = OpenOptions::new().open(&path).unwrap();
        let mut mapped = OpenOptions::new().mmap(true).open(&path).unwrap();
        let mut memory =
            Whisper::from_storage(MemStorage::new(std::fs::read(&path).unwrap()), &path).unwrap();
        let bits = |s: Option<whisper::Series>| {
            s.map(|s| (s.from, s.until, s.step, s.values.iter().map(|v| v.map(f64::to_bits)).collect::<Vec<_>>()))
        };
        for &(from_age, until_age) in &fetches {
            let (from, until) = (now - from_age, until_age.map(|u| now - u));
            let a = pread.fetch(from, until, now).map(bits).map_err(|e| e.to_string());
            let b = mapped.fetch(from, until, now).map(bits).map_err(|e| e.to_string());
            let c = memory.fetch(from, until, now).map(bits).map_err(|e| e.to_string());
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(&a, &c);
        }
        for i in 0..archives.len() {
            let slots = |v: Vec<(u32, f64)>| v.into_iter().map(|(t, x)| (t, x.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(
                slots(pread.archive_slots(i).unwrap()),
                slots(mapped.archive_slots(i).unwrap())
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Handles kept open side by side (as carbon's writer and graphite-web's readers do) must
    /// each see the file as the others left it: nothing read at open or by an earlier operation
    /// (header, slot-0 bases) may be reused once another handle has written.
    #[test]
    fn interleaved_writes_through_several_handles_match_one_handle(
        archives in archives(),
        method in crate::differential::method(),
        batches in prop::collection::vec(
            (0usize..3, 0i64..400, prop::collection::vec((0i64..5000, value()), 1..30)), 1..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared.wsp");
        let single = dir.path().join("single.wsp");
        let options = {
            let mut o = CreateOptions::new();
            o.x_files_factor(0.3).aggregation_method(method);
            o
        };
        drop(options.create(&shared, &archives).unwrap());
        let mut one = options.create(&single, &archives).unwrap();
        let mut handles = [
            OpenOptions::new().write(true).open(&shared).unwrap(),
            OpenOptions::new().write(true).lock(true).open(&shared).unwrap(),
            OpenOptions::new().write(true).mmap(true).open(&shared).unwrap(),
        ];
        let mut reader = OpenOptions::new().mmap(true).open(&shared).unwrap();
        let mut now = NOW;
        for (which, advance, points) in &batches {
            now += advance;
            let points: Vec<(i64, f64)> = points.iter().map(|&(a, v)| (now - a, v)).collect();
            if points.len() == 1 {
                let (t, v) = points[0];
                let a = handles[*which].update(v, Some(t), now).map_err(|e| e.to_string());
                let b = one.update(v, Some(t), now).map_err(|e| e.to_string());
                prop_assert_eq!(a, b);
            } else {
                handles[*which].update_many(&points, now).unwrap();
                one.update_many(&points, now).unwrap();
            }
            let bits = |s: Option<whisper::Series>| {
                s.map(|s| (s.from, s.step, s.values.iter().map(|v| v.map(f64::to_bits)).collect::<Vec<_>>()))
            };
            let max = archives.iter().map(|a| a.retention()).max().unwrap_or(1) as i64;
            prop_assert_eq!(
                bits(reader.fetch(now - max, None, now).unwrap()),
                bits(one.fetch(now - max, None, now).unwrap())
            );
        }
        drop(handles);
        drop(one);
        prop_assert!(std::fs::read(&shared).unwrap() == std::fs::read(&single).unwrap(), "bytes differ");
    }
}

//! Opening for speed: `O_NOATIME` and the shared [`HeaderCache`].
//!
//! The cache must not change a byte: the same operations through handles that share a cache
//! (opened fresh for each operation, or kept open side by side) and through handles without one
//! must leave identical files and return identical results. That includes the cases the cache
//! has to notice: a header changed in place by another process (seen once the TTL passes, or at
//! once when changed through a handle of the cache), a file replaced by a rename, a new file
//! that reuses the inode number of a deleted one (ext4 does so at once), a file whose size
//! changed. The differential test against whisper.py runs every scenario through a cached
//! handle too (`differential.rs`).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use whisper::{
    AggregationMethod, CreateOptions, Error, HeaderCache, OpenOptions, Retention, Series, Whisper,
};

use crate::create::is_helper;
use crate::differential::{Op, Scenario, scenario};

const NOW: i64 = 1_700_000_000;

/// Whether files here have birth times; where they do not, nothing is cached and the tests
/// that count cache hits only check the bytes.
fn cacheable(path: &Path) -> bool {
    fs::metadata(path).and_then(|m| m.created()).is_ok()
}

fn options(cache: Option<&Arc<HeaderCache>>) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).noatime(cache.is_some()).header_cache(cache);
    o
}

fn bits(s: Option<Series>) -> String {
    match s {
        None => "none".into(),
        Some(s) => {
            let values: Vec<Option<u64>> = s.values.iter().map(|v| v.map(f64::to_bits)).collect();
            format!("{} {} {} {values:?}", s.from, s.until, s.step)
        }
    }
}

/// Applies one operation of a differential scenario; `Advance` does nothing here.
fn apply(w: &mut Whisper, s: &Scenario, op: &Op, now: i64) -> Result<String, String> {
    let err = |e: Error| e.to_string();
    match op {
        Op::Update { age, value } => w.update(*value, Some(now - age), now).map(|()| String::new()),
        Op::UpdateMany { points } => {
            // As in the differential test: future points only inside the current interval.
            let step0 = i64::from(s.archives[0].seconds_per_point());
            let limit = now - now.rem_euclid(step0) + step0;
            let points: Vec<(i64, f64)> =
                points.iter().map(|&(a, v)| (now - a, v)).filter(|&(t, _)| t < limit).collect();
            w.update_many(&points, now).map(|()| String::new())
        }
        Op::SetAggregation { method, xff } => {
            w.set_aggregation(Some(*method), *xff).map(|(m, x)| format!("{m} {}", x.to_bits()))
        }
        Op::Fetch { from_age, until_age, archive } => {
            let spp = archive
                .and_then(|i| w.header().archives().get(i).map(|a| a.seconds_per_point()))
                .unwrap_or(0);
            let until = until_age.map(|u| now - u);
            w.fetch_archive(now - from_age, until, now, spp).map(bits)
        }
        Op::Advance { .. } => Ok(String::new()),
    }
    .map_err(err)
}

fn create_options(s: &Scenario) -> CreateOptions {
    let mut c = CreateOptions::new();
    c.x_files_factor(s.xff).aggregation_method(s.method).allocation(s.allocation);
    c
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    fs::read(a).unwrap() == fs::read(b).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// One scenario on three files: `plain` through a fresh handle without a cache per
    /// operation; `fresh` through a fresh handle of the shared cache per operation (carbon's
    /// writer with a cache); `kept` through three handles of the same cache kept open and used
    /// in turn (one locking, one mapped), and a fresh one every fourth operation.
    #[test]
    fn handles_sharing_a_cache_write_what_handles_without_one_write(s in scenario()) {
        let dir = tempfile::tempdir().unwrap();
        let [plain, fresh, kept] =
            ["plain", "fresh", "kept"].map(|n| dir.path().join(format!("{n}.wsp")));
        let cache = Arc::new(HeaderCache::new(64));
        drop(create_options(&s).create(&plain, &s.archives).unwrap());
        let mut with_cache = create_options(&s);
        with_cache.header_cache(Some(&cache));
        drop(with_cache.create(&fresh, &s.archives).unwrap());
        drop(with_cache.noatime(true).create(&kept, &s.archives).unwrap());
        let cached = options(Some(&cache));
        let mut handles = [
            cached.open(&kept).unwrap(),
            cached.clone().lock(true).open(&kept).unwrap(),
            cached.clone().mmap(true).open(&kept).unwrap(),
        ];
        let mut now = s.now;
        for (i, op) in s.ops.iter().enumerate() {
            if let Op::Advance { seconds } = op {
                now += seconds;
                continue;
            }
            let a = apply(&mut options(None).open(&plain).unwrap(), &s, op, now);
            let b = apply(&mut cached.open(&fresh).unwrap(), &s, op, now);
            let c = if i % 4 == 3 {
                apply(&mut cached.open(&kept).unwrap(), &s, op, now)
            } else {
                apply(&mut handles[i % 3], &s, op, now)
            };
            prop_assert_eq!(&a, &b, "op {} {:?}: fresh cached handle", i, op);
            prop_assert_eq!(&a, &c, "op {} {:?}: kept-open cached handles", i, op);
            prop_assert!(same_bytes(&plain, &fresh), "op {} {:?}: fresh bytes differ", i, op);
            prop_assert!(same_bytes(&plain, &kept), "op {} {:?}: kept bytes differ", i, op);
        }
        if cacheable(&fresh) && s.ops.iter().any(|op| !matches!(op, Op::Advance { .. })) {
            prop_assert!(cache.stats().hits > 0, "{:?}", cache.stats());
        }
    }
}

/// Two files with the same scenario: `cached` written through fresh handles of `cache`, the
/// other without; both get the same external header changes.
struct Twins {
    cached: PathBuf,
    plain: PathBuf,
    cache: Arc<HeaderCache>,
    now: i64,
    round: i64,
}

impl Twins {
    fn new(dir: &Path, cache: HeaderCache, method: AggregationMethod) -> Twins {
        let archives = [Retention::new(60, 30), Retention::new(300, 30), Retention::new(900, 20)];
        let cache = Arc::new(cache);
        let cached = dir.join("cached.wsp");
        let plain = dir.join("plain.wsp");
        let mut create = CreateOptions::new();
        create.aggregation_method(method).x_files_factor(0.5);
        create.create(&plain, &archives).unwrap();
        create.header_cache(Some(&cache)).create(&cached, &archives).unwrap();
        Twins { cached, plain, cache, now: NOW, round: 0 }
    }

    /// Writes the same points into both: a few minutes of values, then 5 minutes on.
    fn write(&mut self) {
        self.round += 1;
        let points: Vec<(i64, f64)> = (0..7)
            .map(|k| (self.now - 360 + k * 60, (self.round * 7 + k) as f64 * 0.25 - 3.0))
            .collect();
        options(Some(&self.cache))
            .open(&self.cached)
            .unwrap()
            .update_many(&points, self.now)
            .unwrap();
        options(None).open(&self.plain).unwrap().update_many(&points, self.now).unwrap();
        self.now += 300;
    }

    fn assert_same(&self, when: &str) {
        assert!(same_bytes(&self.cached, &self.plain), "bytes differ {when}");
    }

    fn cached_method(&self) -> AggregationMethod {
        options(Some(&self.cache)).open(&self.cached).unwrap().header().aggregation_method()
    }
}

#[test]
fn a_header_changed_by_another_process_is_used_once_the_ttl_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_millis(60);
    let cache = HeaderCache::builder().ttl(ttl).build();
    let mut t = Twins::new(dir.path(), cache, AggregationMethod::Average);
    let methods = [AggregationMethod::Max, AggregationMethod::Sum, AggregationMethod::Last];
    for (round, method) in methods.into_iter().cycle().take(6).enumerate() {
        t.write();
        t.write();
        // Another process (the path functions do not use the cache) changes both headers.
        let xff = Some(round as f64 / 10.0);
        whisper::set_aggregation_method(&t.cached, method, xff).unwrap();
        whisper::set_aggregation_method(&t.plain, method, xff).unwrap();
        std::thread::sleep(ttl + Duration::from_millis(20));
        t.write();
        t.assert_same(&format!("in round {round}, after the change to {method}"));
        assert_eq!(t.cached_method(), method);
    }
    if cacheable(&t.cached) {
        let s = t.cache.stats();
        assert!(s.hits >= 6 && s.misses >= 6, "{s:?}");
    }
}

#[test]
fn a_header_change_is_seen_within_the_ttl_through_the_cache_only() {
    let dir = tempfile::tempdir().unwrap();
    let cache = HeaderCache::builder().ttl(Duration::from_secs(3600)).build();
    let mut t = Twins::new(dir.path(), cache, AggregationMethod::Average);
    t.write();
    if !cacheable(&t.cached) {
        return;
    }
    // Changed by another process: not seen within the TTL (the documented trade-off) ...
    whisper::set_aggregation_method(&t.cached, AggregationMethod::Max, None).unwrap();
    assert_eq!(t.cached_method(), AggregationMethod::Average);
    // ... until the cache is cleared.
    t.cache.clear();
    assert_eq!(t.cached_method(), AggregationMethod::Max);
    // Changed through a handle of the cache: seen at once, by fresh and kept-open handles.
    let mut kept = options(Some(&t.cache)).open(&t.cached).unwrap();
    let mut changer = options(Some(&t.cache)).open(&t.cached).unwrap();
    changer.set_aggregation(Some(AggregationMethod::Min), Some(0.25)).unwrap();
    assert_eq!(t.cached_method(), AggregationMethod::Min);
    whisper::set_aggregation_method(&t.plain, AggregationMethod::Min, Some(0.25)).unwrap();
    t.write();
    t.assert_same("after a change through the cache");
    // A handle of the cache opened before the change sees it at its next operation.
    assert_eq!(kept.info().unwrap().aggregation_method(), AggregationMethod::Min);
}

#[test]
fn a_file_replaced_by_a_rename_is_read_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Twins::new(dir.path(), HeaderCache::new(100), AggregationMethod::Average);
    for _ in 0..3 {
        t.write();
    }
    // whisper-resize's way: a new file of the same size with other data and method, renamed
    // over the old one. Its bases differ (its first point is 37 minutes later).
    let archives = [Retention::new(60, 30), Retention::new(300, 30), Retention::new(900, 20)];
    let tmp = dir.path().join("cached.wsp.tmp");
    let mut new = CreateOptions::new()
        .aggregation_method(AggregationMethod::Max)
        .create(&tmp, &archives)
        .unwrap();
    new.update_many(&[(t.now + 37 * 60, 5.0)], t.now + 37 * 60).unwrap();
    drop(new);
    fs::rename(&tmp, &t.cached).unwrap();
    fs::copy(&t.cached, &t.plain).unwrap();
    t.now += 40 * 60;
    assert_eq!(t.cached_method(), AggregationMethod::Max);
    for _ in 0..3 {
        t.write();
        t.assert_same("after the rename");
    }
}

#[test]
fn a_new_file_reusing_an_inode_number_is_not_taken_for_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Twins::new(dir.path(), HeaderCache::new(100), AggregationMethod::Average);
    let archives = [Retention::new(60, 30), Retention::new(300, 30), Retention::new(900, 20)];
    let mut reused = 0;
    for round in 0..20 {
        for _ in 0..2 {
            t.write();
        }
        let old = fs::metadata(&t.cached).unwrap();
        // Another process deletes the metric and creates it again (same size, other method,
        // other bases): ext4 gives the new file the inode number just freed.
        fs::remove_file(&t.cached).unwrap();
        let method = if round % 2 == 0 { AggregationMethod::Sum } else { AggregationMethod::Min };
        let mut new =
            CreateOptions::new().aggregation_method(method).create(&t.cached, &archives).unwrap();
        let first = t.now + 60 * (round + 1);
        new.update_many(&[(first, 1.0)], first).unwrap();
        drop(new);
        let fresh = fs::metadata(&t.cached).unwrap();
        use std::os::unix::fs::MetadataExt;
        if (fresh.dev(), fresh.ino(), fresh.len()) == (old.dev(), old.ino(), old.len()) {
            reused += 1;
        }
        fs::copy(&t.cached, &t.plain).unwrap();
        t.now = first + 60;
        assert_eq!(t.cached_method(), method, "round {round}");
        t.write();
        t.assert_same(&format!("after the file was created again in round {round}"));
    }
    eprintln!("inode numbers reused by the new file: {reused} of 20");
}

#[test]
fn a_file_of_another_size_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Twins::new(dir.path(), HeaderCache::new(100), AggregationMethod::Average);
    t.write();
    t.write();
    // Truncated in place: same inode, another size; the open reads the header and finds the
    // archives past the end.
    let full = fs::metadata(&t.cached).unwrap().len();
    fs::OpenOptions::new().write(true).open(&t.cached).unwrap().set_len(full / 2).unwrap();
    let before = t.cache.stats();
    let e = options(Some(&t.cache)).open(&t.cached).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    if cacheable(&t.cached) {
        assert_eq!(t.cache.stats().misses, before.misses + 1);
    }
    // Restored in place with the same bytes (`cp`): the entry is still right.
    fs::copy(&t.plain, &t.cached).unwrap();
    t.write();
    t.assert_same("after the restore");
}

#[test]
fn a_failed_operation_drops_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Twins::new(dir.path(), HeaderCache::new(100), AggregationMethod::Average);
    t.write();
    if !cacheable(&t.cached) {
        return;
    }
    // A read-only handle cannot write: an I/O error, after which the next open reads again.
    let mut read_only = OpenOptions::new().header_cache(Some(&t.cache)).open(&t.cached).unwrap();
    let e = read_only.update_many(&[(t.now - 60, 1.0)], t.now).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    let before = t.cache.stats();
    t.write();
    assert_eq!(t.cache.stats().misses, before.misses + 1);
    assert_eq!(t.cache.stats().entries, 1);
    t.assert_same("after the failed write");
}

#[test]
fn threads_sharing_one_cache_write_what_one_thread_without_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let archives = [Retention::new(60, 1440), Retention::new(300, 2016)];
    let cache = Arc::new(HeaderCache::new(256));
    let files = 40;
    for i in 0..files {
        for kind in ["cached", "plain"] {
            let path = dir.path().join(format!("{kind}-{i}.wsp"));
            let mut c = CreateOptions::new();
            if kind == "cached" && i % 2 == 0 {
                c.header_cache(Some(&cache));
            }
            c.create(&path, &archives).unwrap();
        }
    }
    let rounds = 30i64;
    let points = |i: usize, r: i64| -> Vec<(i64, f64)> {
        let t = NOW + r * 60;
        (0..(i % 4 + 1) as i64).map(|k| (t - k * 60, (i as i64 * 31 + r + k) as f64)).collect()
    };
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let cache = &cache;
            let dir = dir.path();
            scope.spawn(move || {
                for r in 0..rounds {
                    for i in (thread..files).step_by(4) {
                        let path = dir.join(format!("cached-{i}.wsp"));
                        let mut w = options(Some(cache)).open(&path).unwrap();
                        w.update_many(&points(i, r), NOW + r * 60).unwrap();
                    }
                }
            });
        }
    });
    for r in 0..rounds {
        for i in 0..files {
            let path = dir.path().join(format!("plain-{i}.wsp"));
            whisper::update_many(&path, &points(i, r), NOW + r * 60).unwrap();
        }
    }
    for i in 0..files {
        let a = dir.path().join(format!("cached-{i}.wsp"));
        let b = dir.path().join(format!("plain-{i}.wsp"));
        assert!(same_bytes(&a, &b), "file {i} differs");
    }
    if cacheable(&dir.path().join("cached-0.wsp")) {
        let s = cache.stats();
        assert_eq!(s.misses, (files / 2) as u64, "one miss per file created without the cache");
        assert_eq!(s.hits, rounds as u64 * files as u64 - s.misses);
        assert_eq!(s.entries, files as u64);
    }
}

// ---- O_NOATIME ----------------------------------------------------------------------------

const LONG_AGO: Duration = Duration::from_secs(1_000_000_000);

/// Sets the file's access time to 2001, leaving its modification time.
fn age_atime(path: &Path) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_times(fs::FileTimes::new().set_accessed(SystemTime::UNIX_EPOCH + LONG_AGO)).unwrap();
}

fn atime_is_old(path: &Path) -> bool {
    fs::metadata(path).unwrap().accessed().unwrap() == SystemTime::UNIX_EPOCH + LONG_AGO
}

#[test]
fn noatime_reads_leave_the_access_time_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.wsp");
    let archives = [Retention::new(60, 100)];
    let mut w = CreateOptions::new().noatime(true).create(&path, &archives).unwrap();
    w.update(1.0, Some(NOW - 60), NOW).unwrap();
    age_atime(&path);
    w.fetch(NOW - 600, None, NOW).unwrap();
    assert!(atime_is_old(&path), "read through a handle created with noatime");
    drop(w);

    let cache = Arc::new(HeaderCache::new(10));
    for cache in [None, Some(&cache)] {
        let mut w =
            OpenOptions::new().write(true).noatime(true).header_cache(cache).open(&path).unwrap();
        w.update_many(&[(NOW - 120, 2.0)], NOW).unwrap();
        w.fetch(NOW - 600, None, NOW).unwrap();
        assert!(atime_is_old(&path), "read through a handle opened with noatime");
    }

    // The control: without the flag, the same read updates it (unless the filesystem is
    // mounted noatime, where the test cannot tell).
    let mut w = OpenOptions::new().open(&path).unwrap();
    w.fetch(NOW - 600, None, NOW).unwrap();
    if atime_is_old(&path) {
        eprintln!("SKIP control: reads do not update access times on this filesystem");
    }
}

const NOATIME_HELPER: &str = "cache::helper_open_noatime_as_another_user";

/// Child side of `noatime_falls_back_when_the_file_belongs_to_someone_else`: opens the file
/// named by `WHISPER_TEST_PATH` with `noatime` and reads it.
#[test]
fn helper_open_noatime_as_another_user() {
    if !is_helper(NOATIME_HELPER) {
        return;
    }
    let path = PathBuf::from(std::env::var_os("WHISPER_TEST_PATH").expect("path"));
    use std::os::unix::fs::OpenOptionsExt;
    let direct = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(&path)
        .map(drop)
        .map_err(|e| e.raw_os_error());
    println!("DIRECT: {direct:?}");
    let mut w = OpenOptions::new().noatime(true).open(&path).expect("open with noatime");
    let values = w.fetch(NOW - 600, None, NOW).expect("fetch").expect("in range").values;
    println!("KNOWN: {:?}", values.into_iter().flatten().collect::<Vec<f64>>());
}

/// As root (which may use `O_NOATIME` on any file) the refusal is made real by running the
/// reader as `nobody` with `setpriv`; elsewhere, a file we do not own does it.
#[test]
fn noatime_falls_back_when_the_file_belongs_to_someone_else() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        // /etc/passwd is root's and readable: the open succeeds without the flag, and then
        // fails as not being whisper, not with EPERM.
        let e = OpenOptions::new().noatime(true).open("/etc/passwd").unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. } | Error::Unsupported { .. }), "{e:?}");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIP: setpriv is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("root.wsp");
    let mut w = whisper::create(&path, &[Retention::new(60, 100)]).unwrap();
    w.update(3.0, Some(NOW - 60), NOW).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args([NOATIME_HELPER, "--exact", "--nocapture", "--test-threads=1"])
        .env(crate::create::HELPER_ENV, NOATIME_HELPER)
        .env("WHISPER_TEST_PATH", OsString::from(&path))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("Permission denied") && !stdout.contains("DIRECT") {
        // The test binary itself is not reachable by `nobody` (a private target directory).
        eprintln!("SKIP: nobody cannot run the test binary: {stderr}");
        return;
    }
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("DIRECT: Err(Some(1))"), "O_NOATIME was not refused: {stdout}");
    assert!(stdout.contains("KNOWN: [3.0]"), "{stdout}");
}

#[test]
fn merging_into_a_cached_handle_writes_what_an_uncached_one_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Twins::new(dir.path(), HeaderCache::new(100), AggregationMethod::Max);
    t.write();
    let src = dir.path().join("src.wsp");
    let archives = [Retention::new(60, 30), Retention::new(300, 30), Retention::new(900, 20)];
    let mut w = whisper::create(&src, &archives).unwrap();
    let points: Vec<(i64, f64)> = (0..40).map(|k| (t.now - 2400 + k * 60, k as f64)).collect();
    w.update_many(&points, t.now).unwrap();
    for _ in 0..2 {
        let mut from = OpenOptions::new().open(&src).unwrap();
        let mut cached = options(Some(&t.cache)).open(&t.cached).unwrap();
        whisper::merge_into(&mut from, &mut cached, None, None, t.now).unwrap();
        let mut plain = options(None).open(&t.plain).unwrap();
        whisper::merge_into(&mut from, &mut plain, None, None, t.now).unwrap();
        t.assert_same("after a merge");
        t.write();
        t.assert_same("after a write following a merge");
    }
}

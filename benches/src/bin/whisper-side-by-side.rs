//! bench-whisper.py's work, done through the whisper crate, for side-by-side runs with
//! whisper.py (`benches/side-by-side/whisper.sh` runs both and compares).
//!
//! ```text
//! whisper-side-by-side [--dir D] [--files 1000] [--reps 1] [--rep-label N] [--batches 1440,10]
//!                      [--variants path,handle]
//! whisper-side-by-side --make-files DIR --now T [--files 3]
//! whisper-side-by-side --create-only zeroed|writezeros|fallocate|sparse [--dir D] [--files N]
//!                      [--rep-label N]
//! ```
//!
//! Per repetition and batch size, as `shared/peers/bench-whisper.py`: create FILES files
//! (`60s:1d,5m:7d,15m:3y`, xff 0.5, average, `posix_fallocate`), `update_many` one day of 60 s
//! points into each in batches of BATCH, then fetch the last 24 h of each with an explicit
//! `now`. Once per repetition, FILES zero-filled creates (plus write-zeros and sparse ones).
//! Prints `BENCH bench=whisper-rs ...` lines in bench-whisper.py's format, one variant per
//! `bench=`:
//!
//! - `whisper-rs`: the path functions, which open the file for every call, as whisper.py does.
//! - `whisper-rs-handle`: one kept-open `Whisper` per file (opened before the clock starts,
//!   as a writer that caches its handles would), fetch through `fetch_into` with a reused
//!   buffer; `fetch24h-mmap` through memory-mapped handles.
//!
//! `--create-only MODE` only creates FILES files in one allocation mode and keeps them (the
//! caller removes them): the script uses it to time creates on a filesystem where nothing was
//! deleted just before (ext4 without a journal scans recently deleted inodes on every create).
//!
//! `--make-files` writes small reference files (every allocation mode, both batch sizes, at a
//! fixed `now`) that the script compares byte for byte with whisper.py's.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use benches::{ALLOCATIONS, POINTS_PER_DAY, align_minute, archives, create_options, day_of_points};
use whisper::{Allocation, OpenOptions, Series, Whisper};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

struct Args {
    dir: PathBuf,
    files: usize,
    reps: usize,
    rep_label: usize,
    batches: Vec<usize>,
    path_variant: bool,
    handle_variant: bool,
    make_files: Option<PathBuf>,
    now: Option<i64>,
    create_only: Option<String>,
}

fn parse_args() -> Result<Args> {
    let tmp = std::env::var_os("PEERS_TMP").unwrap_or_else(|| "/tmp/graphite-peers".into());
    let mut a = Args {
        dir: Path::new(&tmp).join("whisper-bench-rs"),
        files: 1000,
        reps: 1,
        rep_label: 1,
        batches: vec![1440, 10],
        path_variant: true,
        handle_variant: true,
        make_files: None,
        now: None,
        create_only: None,
    };
    let mut files_given = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => a.dir = val()?.into(),
            "--files" => {
                a.files = val()?.parse()?;
                files_given = true;
            }
            "--reps" => a.reps = val()?.parse()?,
            "--rep-label" => a.rep_label = val()?.parse()?,
            "--batches" => {
                a.batches = val()?
                    .split(',')
                    .filter(|b| !b.is_empty())
                    .map(str::parse)
                    .collect::<std::result::Result<_, _>>()?;
            }
            "--variants" => {
                let v = val()?;
                a.path_variant = v.split(',').any(|x| x == "path");
                a.handle_variant = v.split(',').any(|x| x == "handle");
            }
            "--make-files" => a.make_files = Some(val()?.into()),
            "--now" => a.now = Some(val()?.parse()?),
            "--create-only" => a.create_only = Some(val()?),
            "-h" | "--help" => {
                println!(
                    "usage: whisper-side-by-side [--dir D] [--files N] [--reps R] [--rep-label N] \
                     [--batches 1440,10] [--variants path,handle]\n       \
                     whisper-side-by-side --make-files DIR --now T [--files 3]\n       \
                     whisper-side-by-side --create-only MODE [--dir D] [--files N] [--rep-label N]"
                );
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {flag}").into()),
        }
    }
    if a.make_files.is_some() && !files_given {
        a.files = 3;
    }
    if a.files == 0 || a.batches.contains(&0) {
        return Err("--files and every batch must be positive".into());
    }
    Ok(a)
}

/// Formats like Python's `"%.6g"`, so the lines read the same as bench-whisper.py's.
fn g6(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.into()
        }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        trim(&format!("{v:.*}", (5 - exp) as usize))
    }
}

/// A value of a `BENCH` line.
enum V {
    I(usize),
    F(f64),
    S(&'static str),
}

fn emit(bench: &str, case: &str, rep: usize, kv: &[(&str, V)]) {
    let mut line = format!("BENCH bench={bench} case={case} rep={rep}");
    for (k, v) in kv {
        let v = match v {
            V::I(i) => i.to_string(),
            V::F(f) => g6(*f),
            V::S(s) => (*s).to_string(),
        };
        line.push_str(&format!(" {k}={v}"));
    }
    println!("{line}");
}

fn make_paths(dir: &Path, files: usize, parts: &[&str]) -> Result<Vec<PathBuf>> {
    let base = parts.iter().fold(dir.to_path_buf(), |p, part| p.join(part));
    fs::create_dir_all(&base)?;
    Ok((0..files).map(|i| base.join(format!("m{i}.wsp"))).collect())
}

fn remove_dir(d: &Path) -> Result<()> {
    match fs::remove_dir_all(d) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// One repetition of one batch size in one variant, as bench-whisper.py's `run_rep`.
fn run_rep(a: &Args, batch: usize, handles: bool) -> Result<PathBuf> {
    let variant = if handles { "handle" } else { "path" };
    let (bench, rep) = (if handles { "whisper-rs-handle" } else { "whisper-rs" }, a.rep_label);
    let d = a.dir.join(format!("{variant}-rep{rep}-b{batch}"));
    remove_dir(&d)?;
    let paths = make_paths(&d, a.files, &["bench", "whisper"])?;
    let files = a.files;
    let now = whisper::now();
    let end = align_minute(now);
    let options = create_options(Allocation::Fallocate);
    let archives = archives();

    let t = Instant::now();
    let mut open: Vec<Whisper> = Vec::with_capacity(if handles { files } else { 0 });
    for p in &paths {
        let db = options.create(p, &archives)?;
        if handles {
            open.push(db);
        }
    }
    let t_create = t.elapsed().as_secs_f64();

    let pts: Vec<Vec<(i64, f64)>> = (0..files).map(|i| day_of_points(i, end)).collect();
    let mut calls = 0;
    let t = Instant::now();
    for (i, p) in paths.iter().enumerate() {
        for chunk in pts[i].chunks(batch) {
            // whisper.py's update_many reads the clock on every call.
            if handles {
                open[i].update_many(chunk, whisper::now())?;
            } else {
                whisper::update_many(p, chunk, whisper::now())?;
            }
            calls += 1;
        }
    }
    let t_update = t.elapsed().as_secs_f64();
    let npoints = files * POINTS_PER_DAY;

    let fetch_now = whisper::now();
    let from = fetch_now - 86_400;
    let (t_fetch, got, step) = if handles {
        fetch_handles(&mut open, from, fetch_now)?
    } else {
        let (mut got, mut step) = (0, 0);
        let t = Instant::now();
        for p in &paths {
            let series = whisper::fetch(p, from, Some(fetch_now), fetch_now)?.unwrap_or_default();
            got += series.values.iter().filter(|v| v.is_some()).count();
            step = series.step;
        }
        (t.elapsed().as_secs_f64(), got, step)
    };
    if step != 60 {
        return Err(format!("fetch used the archive with step {step}").into());
    }

    let fetch_line = |case, seconds: f64, got: usize| {
        emit(
            bench,
            case,
            rep,
            &[
                ("files", V::I(files)),
                ("seconds", V::F(seconds)),
                ("files_per_s", V::F(files as f64 / seconds)),
                ("points_read", V::I(got)),
                ("points_per_s", V::F(got as f64 / seconds)),
            ],
        )
    };
    let fpf = files as f64;
    emit(
        bench,
        "create",
        rep,
        &[
            ("files", V::I(files)),
            ("seconds", V::F(t_create)),
            ("files_per_s", V::F(fpf / t_create)),
            ("allocation", V::S("fallocate")),
        ],
    );
    emit(
        bench,
        &format!("update_many-batch{batch}"),
        rep,
        &[
            ("files", V::I(files)),
            ("points", V::I(npoints)),
            ("calls", V::I(calls)),
            ("seconds", V::F(t_update)),
            ("points_per_s", V::F(npoints as f64 / t_update)),
            ("files_per_s", V::F(fpf / t_update)),
        ],
    );
    fetch_line("fetch24h", t_fetch, got);

    if handles {
        // Again over the same handles: their buffers are now allocated (the first pass pays
        // for growing each handle's scratch buffers, page faults included).
        let (seconds, got, _) = fetch_handles(&mut open, from, fetch_now)?;
        fetch_line("fetch24h-warm", seconds, got);
        drop(open);
        // Maps are made before the clock starts, as handles kept open would be.
        let mut maps: Vec<Whisper> = paths
            .iter()
            .map(|p| OpenOptions::new().mmap(true).open(p))
            .collect::<whisper::Result<_>>()?;
        let (seconds, got, _) = fetch_handles(&mut maps, from, fetch_now)?;
        fetch_line("fetch24h-mmap", seconds, got);
        let (seconds, got, _) = fetch_handles(&mut maps, from, fetch_now)?;
        fetch_line("fetch24h-mmap-warm", seconds, got);
    }
    Ok(d)
}

/// Fetches `(from, now]` from every handle through one reused `Series`; returns the seconds
/// taken, the values read and the step of the last fetch.
fn fetch_handles(handles: &mut [Whisper], from: i64, now: i64) -> Result<(f64, usize, u32)> {
    let mut series = Series::default();
    let mut got = 0;
    let t = Instant::now();
    for db in handles {
        db.fetch_into(from, Some(now), now, None, &mut series)?;
        got += series.values.iter().filter(|v| v.is_some()).count();
    }
    Ok((t.elapsed().as_secs_f64(), got, series.step))
}

/// FILES creates in one allocation mode (bench-whisper.py's `create_zerofill` for the
/// zero-filled modes), timed, then removed.
fn create_only(a: &Args, case: &str, name: &str, allocation: Allocation, keep: bool) -> Result<()> {
    let d = a.dir.join(format!("{name}{}", a.rep_label));
    remove_dir(&d)?;
    let paths = make_paths(&d, a.files, &["bench", name])?;
    let options = create_options(allocation);
    let archives = archives();
    let t = Instant::now();
    for p in &paths {
        drop(options.create(p, &archives)?);
    }
    let dt = t.elapsed().as_secs_f64();
    let size = fs::metadata(&paths[0])?.len() as f64;
    emit(
        "whisper-rs",
        case,
        a.rep_label,
        &[
            ("files", V::I(a.files)),
            ("seconds", V::F(dt)),
            ("files_per_s", V::F(a.files as f64 / dt)),
            ("mb_per_s", V::F(a.files as f64 * size / dt / 1e6)),
        ],
    );
    if keep { Ok(()) } else { remove_dir(&d) }
}

/// Reference files for the byte comparison with whisper.py: for each allocation mode an
/// empty file, and files written with one day of points in batches of 1440 (through a handle)
/// and of 10 (through the path functions), all at `now`.
fn make_files(dir: &Path, files: usize, now: i64) -> Result<()> {
    fs::create_dir_all(dir)?;
    let archives = archives();
    let end = align_minute(now);
    for (name, allocation) in ALLOCATIONS {
        let options = create_options(allocation);
        let empty = dir.join(format!("{name}-empty.wsp"));
        drop(options.create(&empty, &archives)?);
        for i in 0..files {
            let points = day_of_points(i, end);
            let mut db = options.create(dir.join(format!("{name}-b1440-m{i}.wsp")), &archives)?;
            db.update_many(&points, now)?;
            let p = dir.join(format!("{name}-b10-m{i}.wsp"));
            drop(options.create(&p, &archives)?);
            for chunk in points.chunks(10) {
                whisper::update_many(&p, chunk, now)?;
            }
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut a = parse_args()?;
    if let Some(dir) = &a.make_files {
        let now = a.now.ok_or("--make-files needs --now")?;
        return make_files(dir, a.files, now);
    }
    if let Some(mode) = &a.create_only {
        let (name, allocation) =
            *ALLOCATIONS.iter().find(|(name, _)| name == mode).ok_or_else(|| {
                let names: Vec<&str> = ALLOCATIONS.iter().map(|(name, _)| *name).collect();
                format!("--create-only takes one of {}", names.join(", "))
            })?;
        return create_only(&a, &format!("create-only-{name}"), name, allocation, true);
    }
    fs::create_dir_all(&a.dir)?;
    let first_label = a.rep_label;
    for rep in 0..a.reps {
        a.rep_label = first_label + rep;
        for (n, &batch) in a.batches.iter().enumerate() {
            if a.path_variant {
                let d = run_rep(&a, batch, false)?;
                if n == 0 {
                    for (name, allocation) in [
                        ("zerofill", Allocation::Zeroed),
                        ("writezeros", Allocation::WriteZeros),
                        ("sparse", Allocation::Sparse),
                    ] {
                        create_only(&a, &format!("create-{name}"), name, allocation, false)?;
                    }
                }
                remove_dir(&d)?;
            }
            if a.handle_variant {
                let d = run_rep(&a, batch, true)?;
                remove_dir(&d)?;
            }
        }
    }
    remove_dir(&a.dir)
}

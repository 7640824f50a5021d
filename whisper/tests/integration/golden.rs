//! Golden files: whisper files written by the reference whisper.py (`tests/data/*.wsp`), with
//! what whisper.py's `info` and `fetch` returned for them (`tests/data/*.json`).
//!
//! Every file must read back exactly as whisper.py read it (header fields and every fetched
//! value, bit for bit), and replaying the operations that made it must give the same bytes.
//! These tests need no Python; `golden_files_are_what_the_generator_writes` reruns the generator
//! when the reference is installed. See `tests/data/README.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use whisper::{
    AggregationMethod, Allocation, CreateOptions, Error, Header, MemStorage, OpenOptions,
    Retention, Series, Storage, Whisper,
};

use crate::reference::{PYTHON, h2f, missing};

/// The largest golden file allowed (STYLE.md, Tests).
const MAX_GOLDEN_BYTES: u64 = 64 * 1024;

pub(crate) fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Every golden case: its name and its JSON record.
fn cases() -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir())
        .expect("tests/data")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(data_dir().join(format!("{name}.json")))
                .expect("read json");
            let record: Value = serde_json::from_str(&text).expect("valid json");
            (name, record)
        })
        .collect()
}

fn wsp(name: &str) -> PathBuf {
    data_dir().join(format!("{name}.wsp"))
}

fn hex_bits(v: &Value) -> u64 {
    h2f(v).expect("hex float").to_bits()
}

fn method(v: &Value) -> AggregationMethod {
    v.as_str().expect("method name").parse().expect("known method")
}

fn int(v: &Value) -> i64 {
    v.as_i64().expect("integer")
}

/// Checks a header against whisper.py's `info()` (plus `fileSize`).
fn check_info(name: &str, header: &Header, info: &Value) {
    assert_eq!(header.aggregation_method(), method(&info["aggregationMethod"]), "{name}");
    assert_eq!(i64::from(header.max_retention()), int(&info["maxRetention"]), "{name}");
    assert_eq!(
        f64::from(header.x_files_factor()).to_bits(),
        hex_bits(&info["xFilesFactor"]),
        "{name}: xFilesFactor"
    );
    assert_eq!(header.file_size(), info["fileSize"].as_u64().expect("size"), "{name}");
    let archives = info["archives"].as_array().expect("archives");
    assert_eq!(header.archives().len(), archives.len(), "{name}");
    for (ours, theirs) in header.archives().iter().zip(archives) {
        assert_eq!(i64::from(ours.offset()), int(&theirs["offset"]), "{name}");
        assert_eq!(i64::from(ours.seconds_per_point()), int(&theirs["secondsPerPoint"]), "{name}");
        assert_eq!(i64::from(ours.points()), int(&theirs["points"]), "{name}");
        assert_eq!(ours.retention() as i64, int(&theirs["retention"]), "{name}");
        assert_eq!(ours.size() as i64, int(&theirs["size"]), "{name}");
    }
}

/// Runs one recorded fetch and checks the result (or the error) against whisper.py's.
fn check_fetch<S: Storage>(name: &str, w: &mut Whisper<S>, q: &Value) {
    let from = int(&q["from"]);
    let until = q["until"].as_i64();
    let now = int(&q["now"]);
    let ours = match q["archive"].as_u64() {
        Some(spp) => w.fetch_archive(from, until, now, spp as u32),
        None => w.fetch(from, until, now),
    };
    let what = format!("{name}: fetch {q}");
    if let Some(error) = q.get("error") {
        match (error.as_str().expect("name"), &ours) {
            ("InvalidTimeInterval", Err(Error::InvalidTimeInterval { .. }))
            | ("ValueError", Err(Error::InvalidGranularity { .. })) => {}
            _ => panic!("{what}: whisper.py raised {error}, we returned {ours:?}"),
        }
        return;
    }
    let ours = ours.unwrap_or_else(|e| panic!("{what}: {e}"));
    let expected = &q["result"];
    let Some(Series { from, until, step, values }) = ours else {
        assert!(expected.is_null(), "{what}: we returned None");
        return;
    };
    assert!(!expected.is_null(), "{what}: whisper.py returned None");
    assert_eq!(from, int(&expected[0]), "{what}: from");
    assert_eq!(until, int(&expected[1]), "{what}: until");
    assert_eq!(i64::from(step), int(&expected[2]), "{what}: step");
    let theirs: Vec<Option<u64>> = expected[3]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| (!v.is_null()).then(|| hex_bits(v)))
        .collect();
    let ours: Vec<Option<u64>> = values.iter().map(|v| v.map(f64::to_bits)).collect();
    assert_eq!(ours, theirs, "{what}: values (as bits)");
}

/// Replays the operations that made a golden file on `w`, checking results and errors.
fn replay<S: Storage>(name: &str, w: &mut Whisper<S>, ops: &Value) {
    for (i, op) in ops.as_array().expect("ops").iter().enumerate() {
        let what = format!("{name}: op {i} {op}");
        let expect_error = op.get("error").and_then(Value::as_str);
        match op["op"].as_str().expect("op") {
            "update" => {
                let value = h2f(&op["value"]).expect("value");
                let r = w.update(value, op["timestamp"].as_i64(), int(&op["now"]));
                match (expect_error, r) {
                    (None, Ok(())) => {}
                    (Some("TimestampNotCovered"), Err(Error::TimestampNotCovered { .. })) => {}
                    (e, r) => panic!("{what}: whisper.py {e:?}, ours {r:?}"),
                }
            }
            "update_many" => {
                assert_eq!(expect_error, None, "{what}");
                let points: Vec<(i64, f64)> = op["points"]
                    .as_array()
                    .expect("points")
                    .iter()
                    .map(|p| (int(&p[0]), h2f(&p[1]).expect("value")))
                    .collect();
                w.update_many(&points, int(&op["now"])).unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            "set_aggregation" => {
                let (old, _) = w
                    .set_aggregation(Some(method(&op["method"])), op["xff"].as_f64())
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(old, method(&op["result"]), "{what}");
            }
            "set_xff" => {
                let (_, old) = w
                    .set_aggregation(None, op["xff"].as_f64())
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(f64::from(old).to_bits(), hex_bits(&op["result"]), "{what}");
            }
            other => panic!("{what}: unknown op {other}"),
        }
    }
}

fn create_options(create: &Value) -> (CreateOptions, Vec<Retention>) {
    let archives = create["archives"]
        .as_array()
        .expect("archives")
        .iter()
        .map(|a| Retention::new(int(&a[0]) as u32, int(&a[1]) as u32))
        .collect();
    let mut options = CreateOptions::new();
    options
        .x_files_factor(create["xff"].as_f64().expect("xff"))
        .aggregation_method(method(&create["method"]))
        .allocation(if create["sparse"].as_bool().expect("sparse") {
            Allocation::Sparse
        } else {
            Allocation::Zeroed
        });
    (options, archives)
}

#[test]
fn golden_files_are_present_small_and_paired() {
    let cases = cases();
    assert!(cases.len() >= 20, "only {} golden cases", cases.len());
    let mut wsp_files = 0;
    for entry in std::fs::read_dir(data_dir()).expect("tests/data") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "wsp") {
            wsp_files += 1;
            let len = std::fs::metadata(&path).expect("stat").len();
            assert!(len <= MAX_GOLDEN_BYTES, "{} is {len} bytes", path.display());
            assert!(path.with_extension("json").exists(), "{} has no .json", path.display());
        }
    }
    assert_eq!(wsp_files, cases.len(), "every .json has its .wsp");

    // The cases cover what the README promises.
    let creates: Vec<&Value> = cases.iter().map(|(_, r)| &r["create"]).collect();
    for m in AggregationMethod::ALL {
        assert!(creates.iter().any(|c| method(&c["method"]) == m), "no golden file for {m}");
    }
    for xff in [0.0, 0.5, 0.7, 1.0] {
        assert!(creates.iter().any(|c| c["xff"].as_f64() == Some(xff)), "no file with xff {xff}");
    }
    for sparse in [false, true] {
        assert!(creates.iter().any(|c| c["sparse"].as_bool() == Some(sparse)));
    }
    for n in [1, 3] {
        assert!(creates.iter().any(|c| c["archives"].as_array().map(Vec::len) == Some(n)));
    }
}

#[test]
fn golden_files_read_as_whisper_py_read_them() {
    for (name, record) in cases() {
        let path = wsp(&name);
        let header = whisper::info(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_info(&name, &header, &record["info"]);

        let fetches = record["fetches"].as_array().expect("fetches");
        let mut pread = OpenOptions::new().open(&path).expect("open");
        let mut mapped = OpenOptions::new().mmap(true).open(&path).expect("open mmap");
        let bytes = std::fs::read(&path).expect("read");
        let mut memory = Whisper::from_storage(MemStorage::new(bytes), &path).expect("mem");
        check_info(&name, memory.header(), &record["info"]);
        for q in fetches {
            check_fetch(&name, &mut pread, q);
            check_fetch(&format!("{name} (mmap)"), &mut mapped, q);
            check_fetch(&format!("{name} (memory)"), &mut memory, q);
        }
    }
}

#[test]
fn replaying_the_generator_gives_identical_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, record) in cases() {
        let golden = std::fs::read(wsp(&name)).expect("golden file");
        let (options, archives) = create_options(&record["create"]);

        let path = dir.path().join(format!("{name}.wsp"));
        let mut w = options.create(&path, &archives).unwrap_or_else(|e| panic!("{name}: {e}"));
        replay(&name, &mut w, &record["ops"]);
        drop(w);
        let ours = std::fs::read(&path).expect("read replay");
        assert!(ours == golden, "{name}: replay on disk differs from the golden file");

        let mut w = options.create_in_memory(&archives).expect("in memory");
        replay(&name, &mut w, &record["ops"]);
        assert!(
            w.into_storage().into_bytes() == golden,
            "{name}: replay in memory differs from the golden file"
        );
    }
}

#[test]
fn golden_files_are_what_the_generator_writes() {
    let importable = Command::new(PYTHON)
        .args(["-c", "import whisper"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !importable {
        missing(&format!("{PYTHON} cannot import whisper"));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(PYTHON)
        .arg(data_dir().join("generate.py"))
        .arg(dir.path())
        .env("TZ", "UTC")
        .output()
        .expect("run generate.py");
    assert!(out.status.success(), "generate.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut generated = 0;
    for entry in std::fs::read_dir(dir.path()).expect("output dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name");
        let committed = std::fs::read(data_dir().join(name))
            .unwrap_or_else(|e| panic!("{} is not committed: {e}", name.to_string_lossy()));
        let fresh = std::fs::read(&path).expect("read generated");
        assert!(committed == fresh, "{} differs from generate.py's output", name.to_string_lossy());
        generated += 1;
    }
    assert_eq!(generated, 2 * cases().len(), "generate.py writes every committed case");
}

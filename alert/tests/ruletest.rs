//! Rule unit tests: the committed example passes, a wrong expectation fails with a readable
//! diff, and bad test files are errors naming the file and line.

use std::path::Path;

use alert::ruletest;

fn data(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn the_example_test_file_passes() {
    let report = ruletest::run(data("examples/rules/rules_test.toml")).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!((report.tests, report.assertions), (2, 8));
}

#[test]
fn a_wrong_expectation_reports_a_diff() {
    let report = ruletest::run(data("tests/data/failing_test.toml")).unwrap();
    assert!(!report.passed());
    assert_eq!(report.failures.len(), 1);
    let text = report.to_string();
    assert!(text.contains("test \"wrong expectation\", rule `cpu_busy` at 10m"), "{text}");
    assert!(text.contains("- expected {host=\"db02\"} firing warning"), "{text}");
    assert!(text.contains("+ got      {alertname=\"cpu_busy\", host=\"db01\""), "{text}");
    assert!(text.contains("firing critical"), "{text}");
}

#[test]
fn bad_test_files_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.toml");
    std::fs::write(&rules, "[[rule]]\nname = \"x\"\ntarget = \"a\"\nop = \">\"\nwarn = 1\n")
        .unwrap();
    let cases = [
        (
            "rule_files = [\"r.toml\"]\n\n[[test]]\nname = \"t\"\nintervall = \"1m\"\n",
            "intervall",
            5,
        ),
        (
            "rule_files = [\"r.toml\"]\n\n[[test]]\nname = \"t\"\n[[test.series]]\nname = \"a\"\nvalues = \"1 2 abc\"\n",
            "not a number",
            3,
        ),
        (
            "rule_files = [\"r.toml\"]\n\n[[test]]\nname = \"t\"\n[[test.alert]]\nat = \"1m\"\nrule = \"nope\"\n",
            "no rule named `nope`",
            3,
        ),
    ];
    for (text, needle, line) in cases {
        let path = dir.path().join("t.toml");
        std::fs::write(&path, text).unwrap();
        let err = ruletest::run(&path).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
        assert!(err.contains(&format!("t.toml:{line}")), "{err}");
    }
}

//! The tests a plain `cargo test` ignores, and which of them `cargo xtask test` runs.
//!
//! Each is `#[ignore = "needs ..."]`, the reason naming what it needs: `--release`
//! (too slow in a debug build) and/or a data directory outside the repository, written
//! from the repository root (`../shared/data/mnist`). The debug run's output lists
//! them: cargo's `Running tests/accuracy.rs (target/debug/deps/accuracy-…)` line, then
//! libtest's `test NAME ... ignored, REASON` lines. The release runs of the binaries in
//! [`RELEASE_TESTS`] then run them with `--ignored`, except those whose data directory
//! is absent here, and [`summary`] says per reason how many there are and how many ran.

use std::collections::BTreeMap;

/// The test binaries (package, test target) whose ignored tests CI runs in release
/// mode. A test ignored anywhere else shows in the summary as not run.
pub(crate) const RELEASE_TESTS: &[(&str, &str)] = &[
    ("dl-optim", "accuracy"),
    ("dl-optim", "deploy_accuracy"),
    ("dl-layers", "sequence_tasks"),
    ("dl-data", "readers"),
    ("dl-classic", "cifar_knn"),
];

/// The variable that makes a test fail rather than skip when its data directory is
/// absent (dl-data's `io::REQUIRE_DATA`; xtask has no dependencies, so it is spelled
/// again here).
pub(crate) const REQUIRE_DATA: &str = "DL_REQUIRE_DATA";

/// One test the debug run reported as ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ignored {
    /// The test binary's target name (`accuracy` for `tests/accuracy.rs`).
    pub(crate) binary: String,
    /// The test's name as libtest prints it.
    pub(crate) name: String,
    /// The `#[ignore = "..."]` reason, empty when none was given.
    pub(crate) reason: String,
}

impl Ignored {
    /// The data directories the reason names, relative to the repository root.
    pub(crate) fn data_dirs(&self) -> impl Iterator<Item = &str> {
        self.reason
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| w.starts_with("../"))
    }
}

/// The target name of a cargo `Running` line: `accuracy` for
/// `Running tests/accuracy.rs (target/debug/deps/accuracy-0123abcd)`.
fn running_binary(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix("Running ")?;
    let path = rest.rsplit_once('(')?.1.strip_suffix(')')?;
    let file = path.rsplit(['/', '\\']).next()?;
    let stem = file.strip_suffix(".exe").unwrap_or(file);
    Some(
        stem.rsplit_once('-')
            .map_or(stem, |(name, _hash)| name)
            .to_string(),
    )
}

/// libtest's `test NAME ... OUTCOME` as `(NAME, OUTCOME)`.
fn test_line(line: &str) -> Option<(&str, &str)> {
    line.strip_prefix("test ")?.split_once(" ... ")
}

/// Every test reported as ignored in the output `lines` of a `cargo test` run.
pub(crate) fn parse_ignored(lines: &[String]) -> Vec<Ignored> {
    let mut binary = String::new();
    let mut out = Vec::new();
    for line in lines {
        if let Some(b) = running_binary(line) {
            binary = b;
        } else if line.trim_start().starts_with("Doc-tests ") {
            binary = line.trim().to_string();
        } else if let Some((name, outcome)) = test_line(line) {
            let reason = match outcome.strip_prefix("ignored") {
                Some(r) if r.is_empty() || r.starts_with(", ") => r.trim_start_matches(", "),
                _ => continue,
            };
            out.push(Ignored {
                binary: binary.clone(),
                name: name.to_string(),
                reason: reason.to_string(),
            });
        }
    }
    out
}

/// The names of the tests that passed in the output `lines` of a `cargo test` run.
pub(crate) fn parse_passed(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| test_line(l))
        .filter(|(_, outcome)| *outcome == "ok")
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Per reason: how many tests were ignored in the debug run, how many of them passed
/// in the release runs (`passed`), and why the rest did not run: a data directory
/// `present` says is missing, or no release run covers them.
pub(crate) fn summary(
    ignored: &[Ignored],
    passed: &[String],
    present: impl Fn(&str) -> bool,
) -> String {
    let mut by_reason: BTreeMap<&str, Vec<&Ignored>> = BTreeMap::new();
    for t in ignored {
        by_reason.entry(t.reason.as_str()).or_default().push(t);
    }
    let ran_total = ignored.iter().filter(|t| passed.contains(&t.name)).count();
    let mut s = format!(
        "ignored tests: {} in the debug run, {ran_total} of them run in release mode\n",
        ignored.len()
    );
    for (reason, tests) in by_reason {
        let ran = tests.iter().filter(|t| passed.contains(&t.name)).count();
        let label = if reason.is_empty() {
            "(no reason given)".to_string()
        } else {
            format!("\"{reason}\"")
        };
        s += &format!("  {:>3} {label}: {ran} ran", tests.len());
        if ran < tests.len() {
            let missing: Vec<&str> = tests[0].data_dirs().filter(|d| !present(d)).collect();
            if missing.is_empty() {
                s += &format!(", {} not run by `cargo xtask test`", tests.len() - ran);
            } else {
                s += &format!(
                    ", {} not run: {} not found",
                    tests.len() - ran,
                    missing.join(", ")
                );
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    /// A debug run as cargo and libtest print it (cargo's stderr merged in).
    const DEBUG_RUN: &str = "\
   Compiling dl-optim v0.1.0 (/repo/dl-optim)
     Running unittests src/lib.rs (target/debug/deps/dl_optim-5f2a9c0e1b3d4a6f)

running 2 tests
test adam::tests::step ... ok
test sgd::tests::ignored_in_name ... ok

     Running tests/accuracy.rs (target/debug/deps/accuracy-0123456789abcdef)

running 3 tests
test a_diverging_run_stops_with_an_error ... ok
test lenet5_on_full_mnist_reaches_98_9_percent ... ignored, needs --release and ../shared/data/mnist
test mlp_on_digits_reaches_97_percent ... ignored, needs --release

test result: ok. 1 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.52s

     Running tests/quant_tflm.rs (target/debug/deps/quant_tflm-fedcba9876543210)
test every_kernel_matches_tflite_micro ... ignored, needs g++, TFLM_DIR and GEMMLOWP_DIR
   Doc-tests dl_core
test dl-core/src/lib.rs - (line 5) ... ignored
";

    #[test]
    fn finds_every_ignored_test_with_its_binary_and_reason() {
        let got = parse_ignored(&lines(DEBUG_RUN));
        let want = [
            (
                "accuracy",
                "lenet5_on_full_mnist_reaches_98_9_percent",
                "needs --release and ../shared/data/mnist",
            ),
            (
                "accuracy",
                "mlp_on_digits_reaches_97_percent",
                "needs --release",
            ),
            (
                "quant_tflm",
                "every_kernel_matches_tflite_micro",
                "needs g++, TFLM_DIR and GEMMLOWP_DIR",
            ),
            ("Doc-tests dl_core", "dl-core/src/lib.rs - (line 5)", ""),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, (binary, name, reason)) in got.iter().zip(want) {
            assert_eq!(
                (g.binary.as_str(), g.name.as_str(), g.reason.as_str()),
                (binary, name, reason)
            );
        }
        assert_eq!(
            got[0].data_dirs().collect::<Vec<_>>(),
            ["../shared/data/mnist"]
        );
        assert_eq!(got[1].data_dirs().count(), 0);
        assert_eq!(
            running_binary("     Running tests/x.rs (target\\deps\\x-00ff.exe)").as_deref(),
            Some("x")
        );
    }

    #[test]
    fn summary_counts_per_reason_what_ran_and_why_the_rest_did_not() {
        let ignored = parse_ignored(&lines(DEBUG_RUN));
        let release = lines(
            "test mlp_on_digits_reaches_97_percent ... ok\n\
             test a_diverging_run_stops_with_an_error ... ok\n\
             test lenet5_on_full_mnist_reaches_98_9_percent ... FAILED\n",
        );
        let passed = parse_passed(&release);
        assert_eq!(
            passed,
            [
                "mlp_on_digits_reaches_97_percent",
                "a_diverging_run_stops_with_an_error"
            ]
        );
        let s = summary(&ignored, &passed, |dir| dir != "../shared/data/mnist");
        let want = [
            "ignored tests: 4 in the debug run, 1 of them run in release mode",
            "    1 (no reason given): 0 ran, 1 not run by `cargo xtask test`",
            "    1 \"needs --release\": 1 ran",
            "    1 \"needs --release and ../shared/data/mnist\": 0 ran, 1 not run: \
             ../shared/data/mnist not found",
            "    1 \"needs g++, TFLM_DIR and GEMMLOWP_DIR\": 0 ran, 1 not run by `cargo xtask test`",
        ];
        assert_eq!(s.lines().collect::<Vec<_>>(), want);
    }
}

//! Project automation, run as `cargo xtask <task>` (the alias lives in
//! `.cargo/config.toml`). Plain Rust with no dependencies so it compiles in seconds.
//!
//! Tasks:
//! - `ci`: everything CI checks: fmt, clippy, rustdoc (warnings denied), the whole
//!   test suite, the no_std builds,
//!   and each benchmark once at small size.
//! - `test`: the whole test suite: the debug tests, then in release mode the tests they
//!   ignore (training to an accuracy, full data sets) where this machine has their
//!   data, then how many tests were ignored, why, and how many of them ran.
//! - `nostd`: builds every no_std crate for `thumbv7em-none-eabihf` (Cortex-M4F) and,
//!   where it can, `thumbv6m-none-eabi` (Cortex-M0) with default features off
//!   (installing the targets with rustup if missing).
//! - `bench [--quick]`: the criterion benchmarks.
//! - `demo`: the main demo (desktop training, export, the emulated microcontroller).
//! - `qemu [--bless]`, `size [--sections]`: the firmware under QEMU on each core, and
//!   its footprint.

mod bench;
mod firmware;
mod ignored;

use std::env;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

pub(crate) type Result<T = ()> = std::result::Result<T, String>;

/// The embedded targets the no_std crates build for: a Cortex-M4F, and a Cortex-M0
/// (ARMv6-M: no FPU, and atomics without compare-and-swap, so no `fetch_add`).
const EMBEDDED_TARGETS: &[&str] = &[CORTEX_M4F, CORTEX_M0];
const CORTEX_M4F: &str = "thumbv7em-none-eabihf";
const CORTEX_M0: &str = "thumbv6m-none-eabi";

/// The no_std library crates, the feature sets each must build with on the MCU
/// targets (`""` means `--no-default-features` alone), and those targets.
const NOSTD_CRATES: &[(&str, &[&str], &[&str])] = &[
    ("dl-core", &["", "alloc"], EMBEDDED_TARGETS),
    // Not yet for the Cortex-M0: dl-autograd's graph epoch counter (graph.rs,
    // `NEXT_EPOCH.fetch_add`) needs compare-and-swap, which ARMv6-M lacks; dl-layers
    // and dl-optim depend on dl-autograd.
    ("dl-autograd", &["alloc"], &[CORTEX_M4F]),
    ("dl-layers", &["alloc"], &[CORTEX_M4F]),
    ("dl-optim", &["alloc"], &[CORTEX_M4F]),
    ("dl-data", &["", "alloc"], EMBEDDED_TARGETS),
    ("dl-classic", &["", "alloc"], EMBEDDED_TARGETS),
    ("dl-deploy", &["", "alloc"], EMBEDDED_TARGETS),
];

/// Crates with criterion benches.
pub(crate) const BENCH_CRATES: &[&str] = &[
    "dl-core",
    "dl-autograd",
    "dl-data",
    "dl-optim",
    "dl-classic",
];
fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result {
    let args: Vec<String> = env::args().skip(1).collect();
    let task = args.first().map(String::as_str);
    let rest = if args.len() > 1 { &args[1..] } else { &[] };
    match task {
        Some("ci") => ci(),
        Some("test") => test(),
        Some("nostd") => nostd(),
        Some("bench") => bench::bench(rest),
        Some("demo") => demo(),
        Some("qemu") => firmware::qemu(rest),
        Some("size") => firmware::size(rest),
        _ => {
            print_help();
            Ok(())
        }
    }
}

fn print_help() {
    eprintln!(
        "Usage: cargo xtask <task>\n\n\
         Tasks:\n  \
         ci             fmt, clippy, tests, no_std builds, quick benches (what CI runs)\n  \
         test           the whole test suite\n  \
         nostd          build the no_std crates for {CORTEX_M4F} and {CORTEX_M0}\n  \
         bench [--quick] [--peers] [--threads N] [--passes P]\n                 benchmarks, side by side with PyTorch/scikit-learn (--peers)\n  \
         demo           the main demo\n  \
         qemu [--bless] run the firmware on every core under QEMU against its golden logs and budget\n  \
         size [--sections]\n                 flash and RAM of every firmware binary on every core"
    );
}

pub(crate) fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub(crate) fn run(cmd: &mut Command) -> Result {
    eprintln!("$ {}", display(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", display(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed with {status}", display(cmd)))
    }
}

fn display(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s += &format!("{}={} ", k.to_string_lossy(), v.to_string_lossy());
        }
    }
    s += &cmd.get_program().to_string_lossy();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn ci() -> Result {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Every public item documented, every intra-doc link resolved.
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    test()?;
    nostd()?;
    firmware::qemu(&[])?;
    bench::bench(&["--quick".to_string()])
}

/// The debug test suite, then, in release mode, the tests it ignored (those that
/// need a release build or a data set; see [`ignored`]) whose data is present here,
/// with `DL_REQUIRE_DATA=1`; then how many were ignored and why, and how many ran.
fn test() -> Result {
    let debug = run_captured(cargo().args(["test", "--workspace"]))?;
    let ignored = ignored::parse_ignored(&debug);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let present = |dir: &str| root.join(dir).is_dir();
    let runnable = |t: &ignored::Ignored| t.data_dirs().all(present);
    let mut passed = Vec::new();
    for (krate, target) in ignored::RELEASE_TESTS {
        let tests: Vec<_> = ignored.iter().filter(|t| t.binary == *target).collect();
        if !tests.iter().any(|t| runnable(t)) {
            continue;
        }
        let mut cmd = cargo();
        cmd.args(["test", "--release", "-p", krate, "--test", target])
            .args(["--", "--ignored", "--exact"])
            .env(ignored::REQUIRE_DATA, "1");
        for t in tests.iter().filter(|t| !runnable(t)) {
            cmd.args(["--skip", t.name.as_str()]);
        }
        passed.extend(ignored::parse_passed(&run_captured(&mut cmd)?));
    }
    println!("\n{}", ignored::summary(&ignored, &passed, present));
    Ok(())
}

/// Runs `cmd` as [`run`] does, echoing its output (stderr merged into stdout, so
/// cargo's `Running` lines stay in order with the tests' lines) and returning it.
fn run_captured(cmd: &mut Command) -> Result<Vec<String>> {
    eprintln!("$ {}", display(cmd));
    let pipe_err = |e: std::io::Error| format!("cannot make a pipe for `{}`: {e}", display(cmd));
    let (reader, writer) = std::io::pipe().map_err(pipe_err)?;
    let writer2 = writer.try_clone().map_err(pipe_err)?;
    let mut child = cmd
        .stdout(writer)
        .stderr(writer2)
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", display(cmd)))?;
    // `cmd` still holds the write ends; dropping them lets the reads below end when
    // the child and its children have exited.
    cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    let mut lines = Vec::new();
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("reading the output of `{}`: {e}", display(cmd)))?;
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        println!("{line}");
        lines.push(line.to_string());
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for `{}`: {e}", display(cmd)))?;
    if status.success() {
        Ok(lines)
    } else {
        Err(format!("`{}` failed with {status}", display(cmd)))
    }
}

fn ensure_target(target: &str) -> Result {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup to check for {target}: {e}"))?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", target]))
}

fn nostd() -> Result {
    for target in EMBEDDED_TARGETS {
        ensure_target(target)?;
    }
    for (krate, feature_sets, targets) in NOSTD_CRATES {
        for target in *targets {
            for features in *feature_sets {
                let mut cmd = cargo();
                cmd.args([
                    "build",
                    "-p",
                    krate,
                    "--target",
                    target,
                    "--no-default-features",
                ]);
                if !features.is_empty() {
                    cmd.args(["--features", features]);
                }
                run(&mut cmd)?;
            }
        }
    }
    Ok(())
}

fn demo() -> Result {
    // 1. Train the digits MLP on the desktop (curves as SVG).
    run(cargo().args([
        "run",
        "--release",
        "-p",
        "dl-optim",
        "--example",
        "mlp",
        "--",
        "digits",
    ]))?;
    // 2. Train the small MLP the microcontroller runs, quantize it to int8 and export
    //    both as model blobs with the host engine's answers, into a folder of
    //    target/ (the committed models in dl-embedded-demo/model stay as they are),
    //    beside copies of the other committed models the firmware carries.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let models = root.join("target").join("demo-model");
    fs::create_dir_all(&models).map_err(|e| format!("cannot create {}: {e}", models.display()))?;
    let committed = root.join("dl-embedded-demo").join("model");
    let entries = fs::read_dir(&committed)
        .map_err(|e| format!("cannot read {}: {e}", committed.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if let Some(name) = path.file_name() {
            fs::copy(&path, models.join(name))
                .map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
        }
    }
    let mut export = cargo();
    export.args([
        "run",
        "--release",
        "-p",
        "dl-optim",
        "--example",
        "digits_export",
        "--",
    ]);
    run(export.arg(&models))?;
    // 3. Deploy: the firmware compiles the fresh blobs and runs them on the emulated
    //    Cortex-M4F, M3 and M0, checking every prediction (f32) and every output byte
    //    (int8) against the desktop's, then trains on the device.
    if Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok()
    {
        std::env::set_var("DL_MODEL_DIR", &models);
        firmware::qemu(&[])
    } else {
        eprintln!(
            "demo: qemu-system-arm is not installed, so the microcontroller half is skipped \
             (apt-get install qemu-system-arm, then `cargo xtask qemu`)"
        );
        Ok(())
    }
}

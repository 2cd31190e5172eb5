//! `cargo xtask bench [--quick] [--peers] [--threads N] [--passes P] [--only PREFIX,...]`.
//!
//! Without `--quick`: runs our criterion benches `P` times (default 3), interleaved
//! with the peers when `--peers` is given (PyTorch and scikit-learn through the scripts
//! in `xtask/peers/` and `dl-classic/benches/peers/`, where Python can import them;
//! candle and burn through the binaries of `xtask/peers/rust/`, a crate outside the
//! workspace that only `--peers` builds, so normal builds never compile them),
//! takes each bench's median per pass from criterion's `estimates.json`, and writes
//! `target/bench/report.md`, `report.json` and `report.svg` (our speed-up over each
//! peer). A peer that cannot run is listed as missing, never skipped silently.
//! `--quick` runs every benchmark once (criterion's `--test`), as CI does.
//! `--only int8/,f32/` keeps the benches (ours and the peers') whose ids start with one
//! of the prefixes (the int8 goals' workloads, say); every peer still runs.

use crate::{cargo, run, Result, BENCH_CRATES};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Median, min and max over passes, in seconds per iteration.
#[derive(Clone, Copy, Debug)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

fn stat(mut v: Vec<f64>) -> Option<Stat> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Stat {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    })
}

struct Options {
    quick: bool,
    peers: bool,
    threads: usize,
    passes: usize,
    /// Bench id prefixes to keep (all when empty).
    only: Vec<String>,
}

impl Options {
    /// Whether bench `id` is one this run keeps (`--only`).
    fn keeps(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| id.starts_with(p.as_str()))
    }

    /// Criterion's filter (a regex on the ids) for `--only`.
    fn criterion_filter(&self) -> Option<String> {
        if self.only.is_empty() {
            return None;
        }
        let escape = |p: &str| -> String {
            p.chars()
                .flat_map(|c| {
                    let special = !(c.is_ascii_alphanumeric() || "/_- ".contains(c));
                    special.then_some('\\').into_iter().chain([c])
                })
                .collect()
        };
        let alts: Vec<String> = self.only.iter().map(|p| escape(p)).collect();
        Some(format!("^({})", alts.join("|")))
    }
}

/// Crates with criterion benches beyond [`BENCH_CRATES`]: dl-deploy's int8 bench
/// (int8 inference against our f32 and PyTorch's int8).
const MORE_BENCH_CRATES: &[&str] = &["dl-deploy"];

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        quick: false,
        peers: false,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        passes: 3,
        only: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--peers" => o.peers = true,
            "--only" => {
                let v = it
                    .next()
                    .ok_or("--only needs bench id prefixes, e.g. int8/,f32/")?;
                o.only = v
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect();
            }
            "--threads" | "--passes" => {
                let v = it
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|&v| v >= 1)
                    .ok_or_else(|| format!("{a} needs a number >= 1"))?;
                if a == "--threads" {
                    o.threads = v;
                } else {
                    o.passes = v;
                }
            }
            other => return Err(format!("bench: unknown option {other}")),
        }
    }
    Ok(o)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Runs the benchmarks (see the module doc).
pub fn bench(args: &[String]) -> Result {
    let o = parse(args)?;
    let threads = o.threads.to_string();
    let ours = |extra: &[&str]| -> Result {
        let mut cmd = cargo();
        // `--bench '*'`, not `--benches`: the latter also runs each library's unit-test
        // harness, which rejects criterion's `--warm-up-time`.
        cmd.args(["bench", "--bench", "*"]);
        for krate in BENCH_CRATES.iter().chain(MORE_BENCH_CRATES) {
            cmd.args(["-p", krate]);
        }
        cmd.arg("--").args(extra);
        if let Some(filter) = o.criterion_filter() {
            cmd.arg(filter);
        }
        cmd.env("RAYON_NUM_THREADS", &threads)
            .env("MATMUL_NUM_THREADS", &threads)
            .env("DL_NUM_THREADS", &threads);
        run(&mut cmd)
    };
    let rust_peers = if o.peers {
        build_rust_peers()
    } else {
        Vec::new()
    };
    if o.quick {
        // Criterion's --test mode runs each benchmark once: proves they work.
        ours(&["--test"])?;
        if o.peers {
            let (results, missing) = peer_runs(&o, &rust_peers, true);
            eprintln!("bench: {} peer results", results.len());
            for m in missing {
                eprintln!("bench: missing peer {m}");
            }
        }
        return Ok(());
    }
    let mut our_passes: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut work: BTreeMap<String, f64> = BTreeMap::new();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut peer_passes: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    let mut missing: Vec<String> = Vec::new();
    for pass in 1..=o.passes {
        eprintln!("bench: pass {pass}/{}", o.passes);
        ours(&["--warm-up-time", "1", "--measurement-time", "3", "--noplot"])?;
        for (id, secs, elements) in criterion_medians(&target_dir().join("criterion")) {
            // Results of benches this run skipped (`--only`) are from earlier runs.
            if !o.keeps(&id) {
                continue;
            }
            if let Some(e) = elements {
                work.insert(id.clone(), e);
            }
            our_passes.entry(id).or_default().push(secs);
        }
        if o.peers {
            let (results, miss) = peer_runs(&o, &rust_peers, false);
            for (peer, id, secs) in results {
                if o.keeps(&id) {
                    peer_passes.entry((peer, id)).or_default().push(secs);
                }
            }
            for m in miss {
                if !missing.contains(&m) {
                    missing.push(m);
                }
            }
        }
    }
    let run = Run {
        ours: &our_passes,
        peers: &peer_passes,
        missing: if o.peers { &missing } else { &[] },
        work: &work,
        load_before: load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    };
    report(&o, &run)
}

/// Everything one `bench` run measured.
struct Run<'a> {
    /// Our per-pass medians by bench id.
    ours: &'a BTreeMap<String, Vec<f64>>,
    /// Each peer's per-pass medians by (peer, bench id).
    peers: &'a BTreeMap<(String, String), Vec<f64>>,
    /// Peers (or workloads) that could not run, with why.
    missing: &'a [String],
    /// Flops per iteration of benches that declare them.
    work: &'a BTreeMap<String, f64>,
    /// `/proc/loadavg`'s 1, 5 and 15 minute loads when the run started.
    load_before: String,
}

/// The machine, for the report's header: CPU model, logical CPUs, instruction sets.
fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let flags = field("flags").unwrap_or_default();
    let isa: Vec<&str> = ["avx512f", "avx2", "fma"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect();
    format!(
        "{}, {cpus} logical CPUs, {}",
        field("model name").unwrap_or_else(|| "unknown CPU".into()),
        if isa.is_empty() {
            "no AVX".to_string()
        } else {
            isa.join("/")
        }
    )
}

/// Flops of one MLP 784-128-64-10 training step at batch 64: the forward products,
/// the weight gradients (same count again) and the input gradients of the two upper
/// layers (the first layer's input needs none); elementwise work is not counted.
fn mlp_step_flops() -> f64 {
    let (b, dims) = (64.0, [784.0, 128.0, 64.0, 10.0]);
    let layer = |i: usize| b * dims[i] * dims[i + 1];
    let forward: f64 = (0..3).map(layer).sum();
    let input_grads: f64 = (1..3).map(layer).sum();
    2.0 * (2.0 * forward + input_grads)
}

/// The issue's goals, checked against this run: one table row each, saying by how
/// much a missed goal is missed.
fn goals(o: &Options, r: &Run<'_>) -> String {
    let med = |id: &str| r.ours.get(id).cloned().and_then(stat).map(|s| s.median);
    let fastest_peer = |id: &str| {
        r.peers
            .iter()
            .filter(|((_, pid), _)| pid == id)
            .filter_map(|((peer, _), v)| stat(v.clone()).map(|s| (peer.clone(), s.median)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    };
    let status = |value: f64, target: f64| {
        if value >= target {
            "met".to_string()
        } else {
            format!("missed by {:.0}%", (1.0 - value / target) * 100.0)
        }
    };
    let mut md =
        String::from("\n## Goals\n\n| goal | measured | target | status |\n|---|---|---|---|\n");
    // Speed-ups over the fastest peer (peer time / ours).
    let vs_peer = [
        (
            "MLP 784-128-64-10 training, b64",
            "train/mlp_784_128_64_10/b64",
            1.2,
        ),
        ("LeNet-5 training, b64", "train/lenet5/b64", 1.0),
        (
            "LSTM training (i32 h128 s50), b32",
            "train/lstm_i32_h128_s50/b32",
            1.0,
        ),
        (
            "transformer block training (d64 h4 ff256 s32), b32",
            "train/transformer_block_d64_h4_ff256_s32/b32",
            1.0,
        ),
        // Latency <= 0.5x the fastest peer's = speed-up >= 2.
        (
            "MLP inference latency, b1",
            "infer/mlp_784_128_64_10/b1",
            2.0,
        ),
        (
            "kNN brute force vs scikit-learn",
            "classic/knn_brute/50000x784_q1000",
            1.0,
        ),
        (
            "k-means vs scikit-learn",
            "classic/kmeans/100000x32_k8",
            1.0,
        ),
        (
            "random forest vs scikit-learn (within 1.5x)",
            "classic/random_forest/digits_100",
            1.0 / 1.5,
        ),
        (
            "RBF SVM vs scikit-learn (within 1.5x)",
            "classic/svm_rbf/digits",
            1.0 / 1.5,
        ),
    ];
    for (what, id, target) in vs_peer {
        if !o.keeps(id) {
            continue;
        }
        let row = match (med(id), fastest_peer(id)) {
            (Some(ours), Some((peer, theirs))) => {
                let x = theirs / ours;
                format!(
                    "| {what} | {x:.2}x the fastest peer ({peer}: {} vs our {}) | >= {target:.2}x | {} |",
                    fmt_time(theirs),
                    fmt_time(ours),
                    status(x, target)
                )
            }
            (Some(_), None) => format!(
                "| {what} | no peer measured (run with --peers) | >= {target:.2}x | not measured |"
            ),
            (None, _) => format!("| {what} | not run | >= {target:.2}x | not measured |"),
        };
        md += &row;
        md.push('\n');
    }
    // Int8 inference on the dl-deploy engine (the VNNI kernels where the CPU has them)
    // against our own f32 inference (`Module::infer`) on the same model, and against
    // PyTorch's int8 (`torch.ao.quantization`, x86 engine) on the same model and shape.
    for (model, w) in [("digits MLP 64-32-10", "mlp"), ("MNIST CNN", "cnn")] {
        for b in [1, 256] {
            let (int8, f32) = (format!("int8/{w}/b{b}"), format!("f32/{w}/b{b}"));
            if !o.keeps(&int8) {
                continue;
            }
            let what = format!("{model} int8, b{b}");
            let row = match (med(&int8), med(&f32)) {
                (Some(q), Some(f)) => format!(
                    "| {what} vs our f32 | {:.2}x our f32 (f32 {} vs int8 {}) | >= 2.50x | {} |",
                    f / q,
                    fmt_time(f),
                    fmt_time(q),
                    status(f / q, 2.5)
                ),
                _ => format!("| {what} vs our f32 | not run | >= 2.50x | not measured |"),
            };
            md += &row;
            md.push('\n');
            let row = match (med(&int8), fastest_peer(&int8)) {
                (Some(q), Some((peer, theirs))) => format!(
                    "| {what} vs PyTorch int8 | {:.2}x the fastest peer ({peer}: {} vs our {}) | >= 1.50x | {} |",
                    theirs / q,
                    fmt_time(theirs),
                    fmt_time(q),
                    status(theirs / q, 1.5)
                ),
                (Some(_), None) => format!(
                    "| {what} vs PyTorch int8 | no peer measured (run with --peers) | >= 1.50x | not measured |"
                ),
                (None, _) => format!("| {what} vs PyTorch int8 | not run | >= 1.50x | not measured |"),
            };
            md += &row;
            md.push('\n');
        }
    }
    // Fractions of the machine's peak, measured by the FMA loop in the same run.
    let peak_id = if o.threads == 1 {
        "peak/fma_f32/1thread".to_string()
    } else {
        format!("peak/fma_f32/{}threads", o.threads)
    };
    let rate = |id: &str| Some(r.work.get(id)? / med(id)?);
    let (peak, core_peak) = (rate(&peak_id), rate("peak/fma_f32/1thread"));
    if !o.keeps("gemm/f32/1024") && !o.keeps("train/mlp_784_128_64_10/b64") {
        return md;
    }
    let gflops = |x: f64| format!("{:.0} GFLOP/s", x * 1e-9);
    match (rate("gemm/f32/1024"), peak) {
        (Some(g), Some(p)) => {
            let _ = writeln!(
                md,
                "| sgemm 1024, {} threads | {} = {:.0}% of the {}-thread peak ({}) | >= 80% | {} |",
                o.threads,
                gflops(g),
                100.0 * g / p,
                o.threads,
                gflops(p),
                status(g / p, 0.8)
            );
        }
        _ => md += "| sgemm 1024 | gemm or peak bench not run | >= 80% | not measured |\n",
    }
    match (med("train/mlp_784_128_64_10/b64"), peak) {
        (Some(t), Some(p)) => {
            let g = mlp_step_flops() / t;
            let core = core_peak.map_or(String::new(), |c| {
                format!("; {:.0}% of one core's {}", 100.0 * g / c, gflops(c))
            });
            let _ = writeln!(
                md,
                "| MLP training step, {} threads | {} = {:.0}% of the {}-thread peak{core} | >= 45% | {} |",
                o.threads,
                gflops(g),
                100.0 * g / p,
                o.threads,
                status(g / p, 0.45)
            );
        }
        _ => md += "| MLP training step | MLP or peak bench not run | >= 45% | not measured |\n",
    }
    md
}

/// Every `full_id -> median seconds` criterion left under `dir`.
fn criterion_medians(dir: &Path) -> Vec<(String, f64, Option<f64>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    let bench =
                        std::fs::read_to_string(p.join("benchmark.json")).unwrap_or_default();
                    let est = std::fs::read_to_string(p.join("estimates.json")).unwrap_or_default();
                    if let (Some(id), Some(ns)) = (json_str(&bench, "full_id"), median_ns(&est)) {
                        // Work per iteration, where the bench declares it (flops for
                        // gemm and the FMA peak).
                        let elements = json_num(&bench, "Elements", 0).map(|(v, _)| v);
                        out.push((id, ns * 1e-9, elements));
                    }
                } else {
                    stack.push(p);
                }
            }
        }
    }
    out
}

/// The string value of `"key":"..."` in a JSON text (no escapes in our ids).
fn json_str(text: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":\"");
    let start = text.find(&pat)? + pat.len();
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_string())
}

/// The first number after `"key":` at or after byte `from`.
fn json_num(text: &str, key: &str, from: usize) -> Option<(f64, usize)> {
    let pat = format!("\"{key}\":");
    let start = text[from..].find(&pat)? + from + pat.len();
    let rest = text[start..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    Some((rest[..end].parse().ok()?, start))
}

fn median_ns(est: &str) -> Option<f64> {
    let at = est.find("\"median\":")?;
    json_num(est, "point_estimate", at).map(|(v, _)| v)
}

/// The candle and burn peers: `(peer, its binary or why it is missing)`. Each is built
/// by its own cargo invocation (one feature each), so burn's gemm features do not unify
/// into candle's build; the crate has its own workspace and lock file.
fn build_rust_peers() -> Vec<(&'static str, std::result::Result<PathBuf, String>)> {
    let manifest = root().join("xtask/peers/rust/Cargo.toml");
    let target = target_dir().join("peers");
    [("candle", "candle_bench"), ("burn", "burn_bench")]
        .into_iter()
        .map(|(peer, bin)| {
            let mut cmd = cargo();
            cmd.args(["build", "--release", "--manifest-path"])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .args(["--features", peer, "--bin", bin]);
            let exe = target
                .join("release")
                .join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
            (
                peer,
                run(&mut cmd)
                    .map(|()| exe)
                    .map_err(|e| format!("{peer}: build failed ({e})")),
            )
        })
        .collect()
}

/// Runs each peer (script or binary) once; returns `(peer, bench id, seconds)` and the
/// peers that could not run, with the reason.
fn peer_runs(
    o: &Options,
    rust_peers: &[(&str, std::result::Result<PathBuf, String>)],
    quick: bool,
) -> (Vec<(String, String, f64)>, Vec<String>) {
    let scripts = [
        ("pytorch", root().join("xtask/peers/torch_bench.py")),
        // PyTorch's own int8 (torch.ao.quantization, x86 engine) on dl-deploy's int8
        // bench workloads.
        ("pytorch", root().join("xtask/peers/torch_int8_bench.py")),
        (
            "scikit-learn",
            root().join("dl-classic/benches/peers/sklearn_classic.py"),
        ),
    ];
    let mut results = Vec::new();
    let mut missing = Vec::new();
    let mut commands = Vec::new();
    for (peer, script) in scripts {
        if !script.exists() {
            missing.push(format!("{peer}: no script at {}", script.display()));
            continue;
        }
        let mut cmd = Command::new("python3");
        cmd.arg(&script);
        commands.push((peer, cmd));
    }
    for (peer, exe) in rust_peers {
        match exe {
            Ok(exe) => commands.push((peer, Command::new(exe))),
            Err(e) => missing.push(e.clone()),
        }
    }
    for (peer, mut cmd) in commands {
        cmd.arg(o.threads.to_string());
        if quick {
            cmd.arg("--quick");
        }
        let out = match cmd.output() {
            Ok(out) if out.status.success() => out,
            Ok(out) => {
                let err = String::from_utf8_lossy(&out.stderr);
                let last = err.lines().last().unwrap_or("").to_string();
                missing.push(format!("{peer}: failed ({last})"));
                continue;
            }
            Err(e) => {
                let prog = cmd.get_program().to_string_lossy().into_owned();
                missing.push(format!("{peer}: cannot run {prog} ({e})"));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        // {"results": {"id": {"median": s, ...}, ...}}
        let Some(body) = text.find("\"results\"") else {
            missing.push(format!("{peer}: no results in its output"));
            continue;
        };
        let mut pos = body;
        while let Some(q) = text[pos..].find("\": {\"median\":") {
            let key_end = pos + q;
            let key_start = text[..key_end].rfind('"').map_or(key_end, |i| i + 1);
            let id = text[key_start..key_end].to_string();
            if let Some((v, next)) = json_num(&text, "median", key_end) {
                results.push((peer.to_string(), id, v));
                pos = next;
            } else {
                break;
            }
        }
        // A workload the peer cannot run is listed, not skipped silently (notes on
        // workloads that did run only say how they were built).
        for (id, why) in peer_notes(&text) {
            if !results.iter().any(|(p, i, _)| p == peer && *i == id) {
                missing.push(format!("{peer} {id}: {why}"));
            }
        }
    }
    (results, missing)
}

/// The `"notes": {"id": "why", ...}` of a peer's output (values hold no quotes or braces).
fn peer_notes(text: &str) -> Vec<(String, String)> {
    let Some(at) = text.find("\"notes\": {") else {
        return Vec::new();
    };
    let body = &text[at + "\"notes\": {".len()..];
    let body = &body[..body.find('}').unwrap_or(body.len())];
    body.split("\", \"")
        .filter_map(|pair| pair.split_once("\": \""))
        .map(|(id, why)| {
            (
                id.trim_matches('"').to_string(),
                why.trim_end_matches('"').to_string(),
            )
        })
        .collect()
}

fn fmt_time(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn report(o: &Options, r: &Run<'_>) -> Result {
    let (ours, peers, missing) = (r.ours, r.peers, r.missing);
    let out_dir = target_dir().join("bench");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Benchmark report\n\nMachine: {}; load average before the run: {}.\n\
         Command: `cargo xtask bench{} --threads {} --passes {}{}`.\n\n\
         {} threads, {} passes; medians of the per-pass medians, min-max across passes.\n\
         Ratio = peer time / our time (above 1: we are faster).\n",
        machine(),
        r.load_before,
        if o.peers { " --peers" } else { "" },
        o.threads,
        o.passes,
        if o.only.is_empty() {
            String::new()
        } else {
            format!(" --only {}", o.only.join(","))
        },
        o.threads,
        o.passes
    );
    md += "| bench | ours | min-max | peer | peer time | ratio |\n|---|---|---|---|---|---|\n";
    let mut json = String::from("{\"threads\": ");
    let _ = write!(json, "{}, \"results\": [", o.threads);
    let mut bars: Vec<(String, f64)> = Vec::new();
    let mut first = true;
    for (id, v) in ours {
        let Some(s) = stat(v.clone()) else { continue };
        let matching: Vec<(&String, Stat)> = peers
            .iter()
            .filter(|((_, pid), _)| pid == id)
            .filter_map(|((peer, _), pv)| stat(pv.clone()).map(|st| (peer, st)))
            .collect();
        if matching.is_empty() {
            let _ = writeln!(
                md,
                "| {id} | {} | {}-{} | | | |",
                fmt_time(s.median),
                fmt_time(s.min),
                fmt_time(s.max)
            );
        }
        for (peer, ps) in &matching {
            let ratio = ps.median / s.median;
            bars.push((format!("{id} vs {peer}"), ratio));
            let _ = writeln!(
                md,
                "| {id} | {} | {}-{} | {peer} | {} | {ratio:.2}x |",
                fmt_time(s.median),
                fmt_time(s.min),
                fmt_time(s.max),
                fmt_time(ps.median)
            );
        }
        if !first {
            json += ", ";
        }
        first = false;
        let _ = write!(
            json,
            "{{\"id\": \"{id}\", \"median_s\": {:e}, \"min_s\": {:e}, \"max_s\": {:e}, \"peers\": {{",
            s.median, s.min, s.max
        );
        for (k, (peer, ps)) in matching.iter().enumerate() {
            let _ = write!(
                json,
                "{}\"{peer}\": {{\"median_s\": {:e}, \"ratio\": {:.4}}}",
                if k > 0 { ", " } else { "" },
                ps.median,
                ps.median / s.median
            );
        }
        json += "}}";
    }
    json += "], \"missing\": [";
    for (k, m) in missing.iter().enumerate() {
        let _ = write!(
            json,
            "{}\"{}\"",
            if k > 0 { ", " } else { "" },
            m.replace('"', "'")
        );
    }
    json += "]}\n";
    md += &goals(o, r);
    if !missing.is_empty() {
        md += "\nMissing peers:\n";
        for m in missing {
            let _ = writeln!(md, "- {m}");
        }
    }
    let write = |name: &str, text: &str| -> Result {
        let p = out_dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    write("report.md", &md)?;
    write("report.json", &json)?;
    write("report.svg", &bar_chart(&bars))?;
    println!("{md}");
    println!("wrote {}/report.{{md,json,svg}}", out_dir.display());
    Ok(())
}

/// Horizontal bars of speed-up ratios on a log scale, with the 1x line.
fn bar_chart(bars: &[(String, f64)]) -> String {
    let (w, row, left) = (900.0, 22.0, 430.0);
    let h = 40.0 + row * bars.len() as f64;
    let max = bars.iter().map(|b| b.1.log2().abs()).fold(1.0f64, f64::max);
    let x = |r: f64| left + (w - left - 20.0) * (0.5 + r.log2() / (2.0 * max));
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"13\">peer time / our time (log scale; right of the line: we are faster)</text>\n"
    );
    for (i, (label, r)) in bars.iter().enumerate() {
        let y = 30.0 + row * i as f64;
        let (x0, x1) = (x(1.0), x(*r));
        let color = if *r >= 1.0 { "#2ca02c" } else { "#d62728" };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text>\n\
             <rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{color}\"/>\n\
             <text x=\"{}\" y=\"{}\">{r:.2}x</text>\n",
            left - 6.0,
            y + 13.0,
            x0.min(x1),
            (x1 - x0).abs().max(1.0),
            row - 6.0,
            x0.max(x1) + 4.0,
            y + 13.0
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{0}\" y1=\"25\" x2=\"{0}\" y2=\"{1}\" stroke=\"black\"/>\n</svg>\n",
        x(1.0),
        h - 5.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_and_peer_json() {
        let bench =
            r#"{"group_id":"train","function_id":"mlp/b64","full_id":"train/mlp/b64","title":"x"}"#;
        assert_eq!(json_str(bench, "full_id").as_deref(), Some("train/mlp/b64"));
        let est = r#"{"mean":{"confidence_interval":{"lower_bound":1.0},"point_estimate":5.0},"median":{"confidence_interval":{"lower_bound":2.0},"point_estimate":1149072.76,"standard_error":4.0}}"#;
        assert_eq!(median_ns(est), Some(1149072.76));
        assert_eq!(
            stat(vec![3.0, 1.0, 2.0]).map(|s| (s.median, s.min, s.max)),
            Some((2.0, 1.0, 3.0))
        );
        assert!(stat(Vec::new()).is_none());
        let peer = r#"{"peer": "candle", "results": {"gemm/f32/64": {"median": 1.5e-5, "min": 1e-5, "max": 2e-5}}, "notes": {"train/a": "no LSTM (yet)", "train/b": "built by hand"}}"#;
        assert_eq!(json_num(peer, "median", 0).map(|(v, _)| v), Some(1.5e-5));
        assert_eq!(
            peer_notes(peer),
            vec![
                ("train/a".to_string(), "no LSTM (yet)".to_string()),
                ("train/b".to_string(), "built by hand".to_string())
            ]
        );
        assert!(peer_notes(r#"{"results": {}}"#).is_empty());
    }

    #[test]
    fn goals_say_met_or_by_how_much_missed() {
        // MLP step: 29.08 MFLOP (hand count: 64 x 109184 MACs forward, as many for the
        // weight gradients, 64 x 8832 for the upper input gradients; 2 flops each: 29,081,600).
        assert!((mlp_step_flops() - 29_081_600.0).abs() < 1.0);
        let o = Options {
            quick: false,
            peers: true,
            threads: 2,
            passes: 1,
            only: Vec::new(),
        };
        let ours: BTreeMap<String, Vec<f64>> = [
            ("train/mlp_784_128_64_10/b64", 1e-3),
            ("train/lenet5/b64", 4e-3),
            ("gemm/f32/1024", 10e-3),
            ("peak/fma_f32/2threads", 1e-3),
            ("int8/mlp/b1", 1e-6),
            ("f32/mlp/b1", 2e-6),
        ]
        .into_iter()
        .map(|(id, t)| (id.to_string(), vec![t]))
        .collect();
        let peers: BTreeMap<(String, String), Vec<f64>> = [
            ("burn", "train/mlp_784_128_64_10/b64", 1.5e-3),
            ("pytorch", "train/mlp_784_128_64_10/b64", 1.1e-3),
            ("pytorch", "train/lenet5/b64", 5e-3),
            ("pytorch", "int8/mlp/b1", 3e-6),
        ]
        .into_iter()
        .map(|(p, id, t)| ((p.to_string(), id.to_string()), vec![t]))
        .collect();
        let work: BTreeMap<String, f64> = [
            ("gemm/f32/1024".to_string(), 2.0 * 1024f64.powi(3)),
            ("peak/fma_f32/2threads".to_string(), 233e6),
        ]
        .into_iter()
        .collect();
        let run = Run {
            ours: &ours,
            peers: &peers,
            missing: &[],
            work: &work,
            load_before: String::new(),
        };
        let md = goals(&o, &run);
        // MLP: fastest peer is pytorch at 1.1 ms, 1.10x < 1.2x: missed by 8%.
        assert!(
            md.contains("| MLP 784-128-64-10 training, b64 | 1.10x the fastest peer (pytorch"),
            "{md}"
        );
        assert!(md.contains("missed by 8%"), "{md}");
        // LeNet: 1.25x >= 1.0x.
        assert!(
            md.contains(
                "1.25x the fastest peer (pytorch: 5.00 ms vs our 4.00 ms) | >= 1.00x | met"
            ),
            "{md}"
        );
        // sgemm: 214.7 GFLOP/s of a 233 GFLOP/s peak = 92%.
        assert!(
            md.contains("215 GFLOP/s = 92% of the 2-thread peak (233 GFLOP/s) | >= 80% | met"),
            "{md}"
        );
        // MLP step: 29.08 GFLOP/s = 12% of peak, missed by 72%.
        assert!(
            md.contains("29 GFLOP/s = 12% of the 2-thread peak | >= 45% | missed by 72%"),
            "{md}"
        );
        assert!(md.contains("| k-means vs scikit-learn | not run |"), "{md}");
        // int8 MLP b1: 2.00x our f32 (missed by 20%), 3.00x PyTorch's int8 (met).
        assert!(
            md.contains("| digits MLP 64-32-10 int8, b1 vs our f32 | 2.00x our f32 (f32 2.0 µs vs int8 1.0 µs) | >= 2.50x | missed by 20% |"),
            "{md}"
        );
        assert!(
            md.contains("| digits MLP 64-32-10 int8, b1 vs PyTorch int8 | 3.00x the fastest peer (pytorch: 3.0 µs vs our 1.0 µs) | >= 1.50x | met |"),
            "{md}"
        );
        assert!(
            md.contains("| MNIST CNN int8, b256 vs our f32 | not run |"),
            "{md}"
        );
        let o = Options {
            only: vec!["int8/".into(), "f32.x".into()],
            ..o
        };
        assert!(o.keeps("int8/mlp/b1") && !o.keeps("gemm/f32/64"));
        assert_eq!(o.criterion_filter().as_deref(), Some("^(int8/|f32\\.x)"));
    }
}

//! The firmware tasks: `qemu` (build every firmware binary for each of its cores, run
//! it under QEMU, decode its defmt log, compare it with the golden log, check the
//! budget) and `size` (flash and RAM of every binary on every core in one table:
//! flash and static RAM from the ELF section headers, the stack from the log).
//!
//! The firmware builds from its own directory with its own `.cargo/config.toml`
//! (cortex-m-rt's and defmt's linker scripts for every bare-metal target; its
//! build.rs picks each target's board memory map), so the desktop crates' `std`
//! features never unify into it.
//!
//! Every figure is keyed `<binary>.<core>.<figure>` in `budget.txt`
//! (`mlp_f32.m0.flash_bytes 20968`); the golden log of a binary on a core is
//! `golden/<binary>-<core>.out`. Adding a binary is one row of [`BINS`] plus its
//! golden logs (`cargo xtask qemu --bless` writes them) and budget lines (the task
//! prints the missing ones).
//!
//! Instructions per inference: QEMU runs with `-icount shift=0`, which advances the
//! virtual clock by exactly 1 ns per guest instruction; the firmware reads a timer
//! QEMU clocks from that virtual time (SysTick on the MPS2 boards, 25 MHz, one tick
//! per 40 instructions; TIMER0 on the micro:bit's nRF51822, which has no SysTick,
//! 16 MHz, one tick per 62.5 instructions) around the classification of all held-out
//! digits, calibrates ticks against a loop of known length (2,000,000 instructions),
//! and logs the quotient.

use crate::{cargo, display, Result};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The firmware crate's directory, relative to the workspace root.
const FIRMWARE_DIR: &str = "dl-embedded-demo";
/// A run that takes longer than this has hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Allowed growth over a figure in `budget.txt`.
const BUDGET_SLACK: f64 = 0.10;
/// ARMv6-M's and ARMv7-M's default memory map: the SRAM region is
/// 0x2000_0000..0x4000_0000; the code region (flash) lies below it.
const SRAM_REGION: std::ops::Range<u64> = 0x2000_0000..0x4000_0000;

/// A core the firmware runs on, and the QEMU machine that models a board with it
/// (the firmware's build.rs links that board's memory map for the target; its
/// `.cargo/config.toml` gives `cargo run` the same QEMU arguments).
struct Core {
    /// Short name, in budget keys and golden log names.
    name: &'static str,
    /// For people.
    title: &'static str,
    target: &'static str,
    qemu: &'static [&'static str],
}

/// Cortex-M4F on the MPS2 with the AN386 image (25 MHz, SysTick).
const M4F: Core = Core {
    name: "m4f",
    title: "Cortex-M4F",
    target: "thumbv7em-none-eabihf",
    qemu: &["-machine", "mps2-an386", "-cpu", "cortex-m4"],
};
/// Cortex-M3 on the MPS2 with the AN385 image (25 MHz, SysTick; no FPU).
const M3: Core = Core {
    name: "m3",
    title: "Cortex-M3",
    target: "thumbv7m-none-eabi",
    qemu: &["-machine", "mps2-an385", "-cpu", "cortex-m3"],
};
/// Cortex-M0 on the BBC micro:bit's nRF51822 (16 MHz TIMER0; no FPU). The SoC fixes
/// the core, so no `-cpu`.
const M0: Core = Core {
    name: "m0",
    title: "Cortex-M0",
    target: "thumbv6m-none-eabi",
    qemu: &["-machine", "microbit"],
};
const ALL_CORES: &[&Core] = &[&M4F, &M3, &M0];

/// Cargo arguments of a binary that must not link `alloc`: without the firmware's
/// `heap` feature nothing in the build can allocate.
const HEAPLESS: &[&str] = &["--no-default-features"];
/// Cargo arguments of a binary with the fixed heap (the default features).
const WITH_HEAP: &[&str] = &[];

/// What a kind of binary logs beyond its stack, and the hard limits.
struct Kind {
    /// (budget figure, the label its number follows in the log).
    logged: &'static [(&'static str, &'static str)],
    /// (budget figure, limit no run may exceed).
    limits: &'static [(&'static str, u64)],
    /// (budget figure, goal): a target the task reports (met, or by how much it is
    /// missed) without failing, for figures the code does not reach yet.
    goals: &'static [(&'static str, u64)],
}

/// Heapless inference from flash: flash <= 32 KiB, RAM <= 8 KiB.
const INFERENCE: Kind = Kind {
    logged: &[("instructions_per_inference", "instructions per inference:")],
    limits: &[("flash_bytes", 32 * 1024), ("ram_bytes", 8 * 1024)],
    goals: &[],
};
/// Heapless inference of a larger model: it must fit the smallest board, the
/// micro:bit's nRF51822 (256 KiB flash, 16 KiB RAM).
const INFERENCE_LARGE: Kind = Kind {
    logged: &[("instructions_per_inference", "instructions per inference:")],
    limits: &[("flash_bytes", 256 * 1024), ("ram_bytes", 16 * 1024)],
    goals: &[],
};
/// TensorFlow Lite Micro's sine model, imported: the micro:bit's limits, and the
/// issue's goal of half MicroFlow's published footprint (34.3 KB flash, 5.3 KB RAM on
/// an nRF52840's Cortex-M4F).
const TFLITE_SINE: Kind = Kind {
    goals: &[("flash_bytes", 17_150), ("ram_bytes", 2_650)],
    ..INFERENCE_LARGE
};
/// TFLM's micro_speech model, imported: the same, half of MicroFlow's 61.8 KB flash
/// and 19.6 KB RAM.
const TFLITE_SPEECH: Kind = Kind {
    goals: &[("flash_bytes", 30_900), ("ram_bytes", 9_800)],
    ..INFERENCE_LARGE
};
/// On-device training: heap arena touched <= 64 KiB.
const TRAINING: Kind = Kind {
    logged: &[("training_heap_bytes", "arena touched:")],
    limits: &[("training_heap_bytes", 64 * 1024)],
    goals: &[],
};

/// The figures every run has: flash and RAM from the ELF plus the logged stack.
const COMMON_FIGURES: [&str; 3] = ["flash_bytes", "ram_bytes", "stack_bytes"];

/// One firmware binary (`src/bin/<name>.rs`): its cargo feature arguments, the cores
/// it runs on, and what it measures.
struct Bin {
    name: &'static str,
    features: &'static [&'static str],
    cores: &'static [&'static Core],
    kind: &'static Kind,
    /// The cargo profile it is built with (a profile of the firmware's Cargo.toml).
    profile: &'static str,
}

impl Bin {
    const fn new(
        name: &'static str,
        features: &'static [&'static str],
        cores: &'static [&'static Core],
        kind: &'static Kind,
    ) -> Self {
        Bin {
            name,
            features,
            cores,
            kind,
            profile: "release",
        }
    }

    /// The same binary built with the firmware's `release-small` profile (opt-level
    /// "s"), for binaries whose goal is flash rather than speed.
    const fn small(self) -> Self {
        Bin {
            profile: "release-small",
            ..self
        }
    }

    /// The budgeted figures of a run of this binary, in table order.
    fn figures(&self) -> impl Iterator<Item = &'static str> + '_ {
        COMMON_FIGURES
            .into_iter()
            .chain(self.kind.logged.iter().map(|&(figure, _)| figure))
    }
}

/// Every firmware binary, in the order they run. Adding one is a row here, plus its
/// golden logs and budget lines.
const BINS: &[Bin] = &[
    // Nothing links `alloc`: the proof that inference needs no heap.
    Bin::new("mlp_f32", HEAPLESS, ALL_CORES, &INFERENCE),
    Bin::new("mlp_int8", HEAPLESS, ALL_CORES, &INFERENCE),
    Bin::new("cnn_int8", HEAPLESS, ALL_CORES, &INFERENCE_LARGE),
    // The issue runs the forest on the Cortex-M4F.
    Bin::new("forest", HEAPLESS, &[&M4F], &INFERENCE_LARGE),
    // TensorFlow Lite Micro's example models, imported from their `.tflite` files at
    // build time; every output checked against TFLM's. Their goal is flash (half of
    // MicroFlow's), so they are built for size.
    Bin::new("tflite_sine", HEAPLESS, ALL_CORES, &TFLITE_SINE).small(),
    Bin::new("tflite_speech", HEAPLESS, ALL_CORES, &TFLITE_SPEECH).small(),
    // A 48 KiB heap: more RAM than the micro:bit has.
    Bin::new("demo", WITH_HEAP, &[&M4F], &TRAINING),
];

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(FIRMWARE_DIR)
}

/// The ELF of `bin` for `core`, where cargo puts it for the firmware's own build.
fn elf_path(bin: &Bin, core: &Core) -> PathBuf {
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => firmware_dir().join("target"),
    };
    target_dir
        .join(core.target)
        .join(bin.profile)
        .join(bin.name)
}

fn build(bin: &Bin, core: &Core) -> Result {
    let mut cmd = cargo();
    cmd.current_dir(firmware_dir())
        .args([
            "build",
            "--profile",
            bin.profile,
            "--bin",
            bin.name,
            "--target",
            core.target,
        ])
        .args(bin.features);
    // Warnings fail the task: the firmware must build clean in release.
    let out = output_checked(&mut cmd)?;
    let warnings = out
        .lines()
        .filter(|l| l.starts_with("warning"))
        .collect::<Vec<_>>();
    if warnings.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "building firmware `{}` for {} printed warnings:\n{}",
            bin.name,
            core.target,
            warnings.join("\n")
        ))
    }
}

/// Runs `cmd`, echoing its stderr, and returns that stderr (cargo prints warnings
/// there); fails on a non-zero status.
fn output_checked(cmd: &mut Command) -> Result<String> {
    eprintln!("$ {}", display(cmd));
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", display(cmd)))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprint!("{stderr}");
    if out.status.success() {
        Ok(stderr)
    } else {
        Err(format!("`{}` failed with {}", display(cmd), out.status))
    }
}

fn require_tool(tool: &str, install: &str) -> Result {
    match Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("`{tool}` not found; install it with `{install}`")),
    }
}

/// Checks for QEMU, defmt-print and every core's rustup target.
fn require_tools() -> Result {
    require_tool("qemu-system-arm", "apt-get install qemu-system-arm")?;
    require_tool(
        "defmt-print",
        "cargo install defmt-print --locked --version 1.2.0",
    )?;
    for core in ALL_CORES {
        crate::ensure_target(core.target)?;
    }
    Ok(())
}

/// Runs `elf` under QEMU's model of `core`'s board with semihosting, pipes its output
/// through defmt-print, and returns (exit success, decoded log).
fn run_qemu(core: &Core, elf: &Path) -> Result<(bool, String)> {
    let mut qemu = Command::new("qemu-system-arm");
    qemu.args(core.qemu)
        .args(["-nographic", "-monitor", "none", "-serial", "none"])
        .args(["-icount", "shift=0"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    eprintln!(
        "$ {} | defmt-print --log-format '{{L}} {{s}}' -e {}",
        display(&qemu),
        elf.display()
    );
    let mut qemu_child = qemu
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-arm: {e}"))?;
    let qemu_out = qemu_child
        .stdout
        .take()
        .ok_or("qemu-system-arm has no stdout pipe")?;
    let mut decoder = Command::new("defmt-print")
        .args(["--log-format", "{L} {s}", "-e"])
        .arg(elf)
        .stdin(qemu_out)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start defmt-print: {e}"))?;

    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        match qemu_child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() > deadline => {
                let _ = qemu_child.kill();
                let _ = decoder.kill();
                return Err(format!(
                    "{} did not exit within {}s",
                    elf.display(),
                    RUN_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for qemu-system-arm: {e}")),
        }
    };
    let mut log = String::new();
    if let Some(mut out) = decoder.stdout.take() {
        out.read_to_string(&mut log)
            .map_err(|e| format!("reading defmt-print's output: {e}"))?;
    }
    let _ = decoder.wait();
    print!("{log}");
    Ok((status.success(), log))
}

/// `{?}` in a golden line matches one or more non-space characters: the figures that
/// may vary with the compiler (instruction counts, stack and heap bytes).
fn line_matches(golden: &str, actual: &str) -> bool {
    match golden.find("{?}") {
        None => golden == actual,
        Some(i) => {
            let (lit, rest) = (&golden[..i], &golden[i + 3..]);
            let Some(tail) = actual.strip_prefix(lit) else {
                return false;
            };
            let run = tail.find(' ').unwrap_or(tail.len());
            (1..=run).any(|n| line_matches(rest, &tail[n..]))
        }
    }
}

/// The golden log of `bin` on `core`.
fn golden_path(bin: &Bin, core: &Core) -> PathBuf {
    firmware_dir()
        .join("golden")
        .join(format!("{}-{}.out", bin.name, core.name))
}

/// Compares `log` with the golden file at `path`; with `bless`, rewrites it (keeping
/// each golden line that still matches, so its `{?}` masks survive).
fn check_golden(path: &Path, log: &str, bless: bool) -> Result {
    let golden = fs::read_to_string(path).unwrap_or_default();
    let (g, a): (Vec<&str>, Vec<&str>) = (golden.lines().collect(), log.lines().collect());
    let mismatch = (0..g.len().max(a.len())).find(|&i| match (g.get(i), a.get(i)) {
        (Some(g), Some(a)) => !line_matches(g, a),
        _ => true,
    });
    if bless {
        let mut out = String::new();
        for (i, line) in a.iter().enumerate() {
            match g.get(i) {
                Some(gl) if line_matches(gl, line) => out.push_str(gl),
                _ => out.push_str(line),
            }
            out.push('\n');
        }
        fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("blessed {}", path.display());
        return Ok(());
    }
    match mismatch {
        None => Ok(()),
        Some(i) => Err(format!(
            "{}: line {} differs from the golden log\n  expected: {}\n  actual:   {}\n\
             (rerun with `cargo xtask qemu --bless` if the change is intended)",
            path.display(),
            i + 1,
            g.get(i).copied().unwrap_or("<end of log>"),
            a.get(i).copied().unwrap_or("<end of log>")
        )),
    }
}

/// The number right after `label` on the first line containing it.
fn figure(log: &str, label: &str) -> Result<u64> {
    log.lines()
        .find_map(|l| l.split_once(label).map(|(_, rest)| rest))
        .and_then(|rest| {
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .ok_or_else(|| format!("the firmware log has no `{label} <number>`"))
}

/// One binary measured on one core.
struct Measured {
    bin: &'static Bin,
    core: &'static Core,
    footprint: Footprint,
    /// Stack high-water from the log.
    stack: u64,
    /// `(figure, value)`: the budgeted figures of this run, in a fixed order.
    figures: Vec<(&'static str, u64)>,
}

impl Measured {
    /// Reads the figures of `bin` on `core` from its ELF and its log.
    fn of(bin: &'static Bin, core: &'static Core, log: &str) -> Result<Self> {
        let footprint = Footprint::of(&read_sections(&elf_path(bin, core))?);
        let with_context = |e: String| format!("{} on {}: {e}", bin.name, core.name);
        let stack = figure(log, "stack high-water:").map_err(with_context)?;
        // In the order of `bin.figures()`: COMMON_FIGURES, then the logged ones.
        let mut values = vec![footprint.flash, footprint.static_ram + stack, stack];
        for &(_, label) in bin.kind.logged {
            values.push(figure(log, label).map_err(with_context)?);
        }
        let figures = bin.figures().zip(values).collect();
        Ok(Measured {
            bin,
            core,
            footprint,
            stack,
            figures,
        })
    }

    /// `<binary>.<core>.<figure>`, the key of `figure` in `budget.txt`.
    fn key(&self, figure: &str) -> String {
        format!("{}.{}.{figure}", self.bin.name, self.core.name)
    }
}

/// Builds and runs every binary on each of its cores; with `golden`, also checks each
/// log against its golden file (`Some(bless)`). Returns the measurements and the
/// failed checks (a failed build or a run that cannot start is an error at once).
fn measure_all(golden: Option<bool>) -> Result<(Vec<Measured>, Vec<String>)> {
    require_tools()?;
    let (mut measured, mut failures) = (Vec::new(), Vec::new());
    for bin in BINS {
        for &core in bin.cores {
            build(bin, core)?;
            let (ok, log) = run_qemu(core, &elf_path(bin, core))?;
            if !ok {
                failures.push(format!(
                    "firmware `{}` exited with failure under QEMU on the {}",
                    bin.name, core.title
                ));
                continue;
            }
            if let Some(bless) = golden {
                if let Err(e) = check_golden(&golden_path(bin, core), &log, bless) {
                    failures.push(e);
                    continue;
                }
            }
            measured.push(Measured::of(bin, core, &log)?);
        }
    }
    Ok((measured, failures))
}

/// `cargo xtask qemu [--bless]`.
pub fn qemu(args: &[String]) -> Result {
    let bless = args.iter().any(|a| a == "--bless");
    let (measured, mut failures) = measure_all(Some(bless))?;
    println!();
    print_table(&measured);
    print_goals(&measured);
    failures.extend(check_figures(&measured, &read_budget()?));
    if failures.is_empty() {
        println!("firmware: golden logs match, figures within budget");
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Each run's figures against the limits and the committed budget (at most
/// [`BUDGET_SLACK`] over it); also flags budget lines that no run measures.
fn check_figures(measured: &[Measured], budget: &[(String, u64)]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut missing = Vec::new();
    for m in measured {
        for &(figure, limit) in m.bin.kind.limits {
            let value = m.figures.iter().find(|(f, _)| *f == figure).map(|f| f.1);
            if let Some(value) = value.filter(|&v| v > limit) {
                failures.push(format!(
                    "{} is {value}, over the limit of {limit}",
                    m.key(figure)
                ));
            }
        }
        for &(figure, value) in &m.figures {
            let key = m.key(figure);
            match budget.iter().find(|(k, _)| *k == key) {
                None => missing.push(format!("{key} {value}")),
                Some(&(_, committed)) => {
                    let allowed = (committed as f64 * (1.0 + BUDGET_SLACK)).floor() as u64;
                    if value > allowed {
                        failures.push(format!(
                            "{key} is {value}, more than 10% over the committed {committed} \
                             (update dl-embedded-demo/budget.txt if the growth is intended)"
                        ));
                    }
                }
            }
        }
    }
    if !missing.is_empty() {
        failures.push(format!(
            "budget.txt has no line for these figures (add them, as measured):\n  {}",
            missing.join("\n  ")
        ));
    }
    let measured_keys: Vec<String> = measured
        .iter()
        .flat_map(|m| m.figures.iter().map(|&(f, _)| m.key(f)))
        .collect();
    // A line for a binary or core that no longer runs would never be checked again.
    let all_ran = measured.len() == BINS.iter().map(|b| b.cores.len()).sum::<usize>();
    for (key, _) in budget {
        if all_ran && !measured_keys.contains(key) {
            failures.push(format!(
                "budget.txt: `{key}` is not a figure of any binary on any core"
            ));
        }
    }
    failures
}

/// One row per binary and core: flash, RAM (static + stack), and what the binary logs.
fn print_table(measured: &[Measured]) {
    println!(
        "{:<13} {:<11} {:>9} {:>10} {:>8} {:>8} {:>9}  other figures",
        "binary", "core", "flash B", "static B", "stack B", "RAM B", "samples B"
    );
    for m in measured {
        let fp = &m.footprint;
        let others: Vec<String> = m
            .bin
            .kind
            .logged
            .iter()
            .filter_map(|(key, _)| m.figures.iter().find(|(f, _)| f == key))
            .map(|(f, v)| format!("{f} {v}"))
            .collect();
        println!(
            "{:<13} {:<11} {:>9} {:>10} {:>8} {:>8} {:>9}  {}",
            m.bin.name,
            m.core.title,
            fp.flash,
            fp.static_ram,
            m.stack,
            fp.static_ram + m.stack,
            fp.samples,
            others.join(", ")
        );
    }
    println!(
        "flash: code + constants + weights (+ .data's initial values), without the \
         embedded samples; RAM: static (.data, .bss) + measured stack high-water"
    );
}

/// Each run's figures against its binary's goals: met, or missed by how much.
fn print_goals(measured: &[Measured]) {
    for m in measured {
        for &(figure, goal) in m.bin.kind.goals {
            let Some(&(_, value)) = m.figures.iter().find(|(f, _)| *f == figure) else {
                continue;
            };
            if value <= goal {
                println!("goal met: {} is {value}, goal {goal}", m.key(figure));
            } else {
                println!(
                    "goal missed: {} is {value}, goal {goal} (over by {}, {:.1}%)",
                    m.key(figure),
                    value - goal,
                    (value - goal) as f64 * 100.0 / goal as f64
                );
            }
        }
    }
}

/// The `key value` lines of `budget.txt` (`#` starts a comment); a key is
/// `<binary>.<core>.<figure>`.
fn read_budget() -> Result<Vec<(String, u64)>> {
    let path = firmware_dir().join("budget.txt");
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_budget(&text).map_err(|(line, e)| format!("{}:{line}: {e}", path.display()))
}

/// Parses budget lines; an error names the (1-based) line.
fn parse_budget(text: &str) -> std::result::Result<Vec<(String, u64)>, (usize, String)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err((i + 1, "expected `<binary>.<core>.<figure> <value>`".into()));
        };
        if key.split('.').count() != 3 || key.split('.').any(str::is_empty) {
            return Err((i + 1, format!("`{key}` is not `<binary>.<core>.<figure>`")));
        }
        if out.iter().any(|(k, _)| k == key) {
            return Err((i + 1, format!("`{key}` appears twice")));
        }
        let value = value
            .parse()
            .map_err(|_| (i + 1, format!("`{value}` is not a number")))?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// `cargo xtask size [--sections]`: builds and runs every binary on each of its cores
/// and prints one table of flash and RAM; `--sections` adds each ELF's sections.
pub fn size(args: &[String]) -> Result {
    let sections = args.iter().any(|a| a == "--sections");
    let (measured, failures) = measure_all(None)?;
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    println!();
    if sections {
        for m in &measured {
            print_sections(m.bin, m.core)?;
        }
    }
    print_table(&measured);
    Ok(())
}

/// The allocated sections of `bin`'s ELF for `core`, and where each one lives.
fn print_sections(bin: &Bin, core: &Core) -> Result {
    let elf = elf_path(bin, core);
    println!("{} on the {} ({}):", bin.name, core.title, elf.display());
    println!(
        "  {:<16} {:>9} {:>12}  where",
        "section", "bytes", "address"
    );
    for s in read_sections(&elf)?.iter().filter(|s| s.alloc) {
        let place = match (s.in_ram(), s.name.as_str()) {
            (true, ".data") => "RAM (+ its initial values in flash)",
            (true, _) => "RAM",
            (false, ".samples") => "flash (embedded data set, not counted)",
            (false, _) => "flash",
        };
        println!("  {:<16} {:>9} {:>#12x}  {place}", s.name, s.size, s.addr);
    }
    println!();
    Ok(())
}

/// A section header's useful fields.
struct Section {
    name: String,
    addr: u64,
    size: u64,
    alloc: bool,
    nobits: bool,
}

impl Section {
    fn in_ram(&self) -> bool {
        SRAM_REGION.contains(&self.addr)
    }
}

/// Flash and RAM of a firmware image.
struct Footprint {
    /// Loaded bytes in the code region, plus `.data`'s initial values, less `.samples`.
    flash: u64,
    /// `.data`, `.bss`, `.uninit` (everything allocated in the SRAM region).
    static_ram: u64,
    /// The embedded data set.
    samples: u64,
}

impl Footprint {
    fn of(sections: &[Section]) -> Self {
        let mut fp = Footprint {
            flash: 0,
            static_ram: 0,
            samples: 0,
        };
        for s in sections.iter().filter(|s| s.alloc) {
            if s.name == ".samples" {
                fp.samples += s.size;
            } else if s.in_ram() {
                fp.static_ram += s.size;
                if !s.nobits {
                    fp.flash += s.size; // initial values, copied at reset
                }
            } else if !s.nobits {
                fp.flash += s.size;
            }
        }
        fp
    }
}

/// The section headers of a 32-bit little-endian ELF file (plain Rust, no crates).
fn read_sections(path: &Path) -> Result<Vec<Section>> {
    let data = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let bad = |what: &str| {
        format!(
            "{}: not a 32-bit little-endian ELF ({what})",
            path.display()
        )
    };
    if data.len() < 52 || &data[..4] != b"\x7fELF" || data[4] != 1 || data[5] != 1 {
        return Err(bad("header"));
    }
    let u16_at = |o: usize| -> Result<u64> {
        data.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as u64)
            .ok_or_else(|| bad("truncated"))
    };
    let u32_at = |o: usize| -> Result<u64> {
        data.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
            .ok_or_else(|| bad("truncated"))
    };
    let (shoff, shentsize, shnum, shstrndx) = (
        u32_at(0x20)? as usize,
        u16_at(0x2E)? as usize,
        u16_at(0x30)? as usize,
        u16_at(0x32)? as usize,
    );
    if shentsize < 40 || shstrndx >= shnum {
        return Err(bad("section header table"));
    }
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u32_at(header(shstrndx) + 16)? as usize;
    let mut sections = Vec::with_capacity(shnum);
    for i in 1..shnum {
        let h = header(i);
        let name_off = strtab + u32_at(h)? as usize;
        let name_bytes = data.get(name_off..).ok_or_else(|| bad("section name"))?;
        let end = name_bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("section name"))?;
        const SHT_NOBITS: u64 = 8;
        const SHF_ALLOC: u64 = 2;
        sections.push(Section {
            name: String::from_utf8_lossy(&name_bytes[..end]).into_owned(),
            nobits: u32_at(h + 4)? == SHT_NOBITS,
            alloc: u32_at(h + 8)? & SHF_ALLOC != 0,
            addr: u32_at(h + 12)?,
            size: u32_at(h + 20)?,
        });
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_wildcards_match_one_token_only() {
        let g = "INFO  stack high-water: {?} B of {?} B";
        assert!(line_matches(
            g,
            "INFO  stack high-water: 1424 B of 4194284 B"
        ));
        assert!(!line_matches(g, "INFO  stack high-water:  B of 4194284 B"));
        assert!(!line_matches(
            g,
            "INFO  stack high-water: 1424 kB of 4194284 B"
        ));
        assert!(line_matches("a {?}% b", "a 95.96% b"));
        assert!(!line_matches("a {?}% b", "a 95.96% c"));
        assert!(line_matches("exact", "exact") && !line_matches("exact", "exact "));
    }

    #[test]
    fn figures_are_read_after_their_label() {
        let log = "INFO  infer\nINFO  instructions per inference: 10370 (calibration)\n";
        assert_eq!(figure(log, "instructions per inference:"), Ok(10370));
        assert!(figure(log, "heap peak:").is_err());
    }

    #[test]
    fn budget_keys_are_binary_core_figure() {
        let text = "# comment\nmlp_f32.m0.flash_bytes 20968  # why\n\ndemo.m4f.stack_bytes 10248\n";
        assert_eq!(
            parse_budget(text),
            Ok(vec![
                ("mlp_f32.m0.flash_bytes".to_string(), 20968),
                ("demo.m4f.stack_bytes".to_string(), 10248)
            ])
        );
        assert_eq!(parse_budget("flash_bytes 1").unwrap_err().0, 1);
        assert_eq!(parse_budget("a..c 1").unwrap_err().0, 1);
        assert_eq!(parse_budget("\na.b.c 1 2").unwrap_err().0, 2);
        assert_eq!(parse_budget("a.b.c x").unwrap_err().0, 1);
        assert_eq!(parse_budget("a.b.c 1\na.b.c 2").unwrap_err().0, 2);
    }

    /// A row added to [`BINS`] needs its golden logs and budget lines, and a budget
    /// line must name a figure some run measures.
    #[test]
    fn every_binary_and_core_has_a_golden_log_and_budget_lines() {
        let budget = read_budget().unwrap();
        let mut expected = Vec::new();
        for bin in BINS {
            for core in bin.cores {
                let golden = golden_path(bin, core);
                assert!(golden.exists(), "{} is missing", golden.display());
                for figure in bin.figures() {
                    expected.push(format!("{}.{}.{figure}", bin.name, core.name));
                }
            }
        }
        for key in &expected {
            assert!(
                budget.iter().any(|(k, _)| k == key),
                "budget.txt lacks {key}"
            );
        }
        for (key, _) in &budget {
            assert!(
                expected.contains(key),
                "budget.txt: {key} is measured by no run"
            );
        }
    }

    #[test]
    fn figures_are_checked_against_limits_and_budget() {
        let infer = &BINS[0];
        let run = |flash: u64, insns: u64| Measured {
            bin: infer,
            core: &M0,
            footprint: Footprint {
                flash,
                static_ram: 20,
                samples: 0,
            },
            stack: 1000,
            figures: vec![
                ("flash_bytes", flash),
                ("ram_bytes", 1020),
                ("stack_bytes", 1000),
                ("instructions_per_inference", insns),
            ],
        };
        let budget: Vec<(String, u64)> = [
            ("mlp_f32.m0.flash_bytes", 20_000),
            ("mlp_f32.m0.ram_bytes", 1020),
            ("mlp_f32.m0.stack_bytes", 1000),
            ("mlp_f32.m0.instructions_per_inference", 100_000),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        assert!(check_figures(&[run(20_000, 110_000)], &budget).is_empty());
        let over = check_figures(&[run(20_000, 110_001)], &budget);
        assert_eq!(over.len(), 1);
        assert!(over[0].starts_with("mlp_f32.m0.instructions_per_inference is 110001"));
        // 40 KiB of flash: over the 32 KiB limit and more than 10% over budget.
        assert_eq!(check_figures(&[run(40_960, 1)], &budget).len(), 2);
        let missing = check_figures(&[run(20_000, 1)], &budget[1..]);
        assert!(missing[0].contains("\n  mlp_f32.m0.flash_bytes 20000"));
    }
}

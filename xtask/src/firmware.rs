//! The firmware tasks: `qemu` (build `dl-embedded-demo`, run it under QEMU, decode its
//! defmt log, compare it with the golden logs, check the budget) and `size` (flash
//! and RAM of the firmware by section, read from the ELF section headers).
//!
//! The firmware builds from its own directory with its own `.cargo/config.toml`
//! (target `thumbv7em-none-eabihf`, cortex-m-rt's and defmt's linker scripts), so the
//! desktop crates' `std` features never unify into it.
//!
//! Instructions per inference: QEMU runs with `-icount shift=0`, which advances the
//! virtual clock by exactly 1 ns per guest instruction; the firmware reads SysTick
//! (clocked from the 25 MHz MPS2 system clock, so one tick per 40 instructions)
//! around the classification of all held-out digits, calibrates ticks against a loop
//! of known length (2,000,000 instructions = 50,000 ticks), and logs the quotient.

use crate::{cargo, display, Result};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The firmware crate's directory, relative to the workspace root.
const FIRMWARE_DIR: &str = "dl-embedded-demo";
/// Target triple the firmware is built for (its `.cargo/config.toml` sets it too).
const TARGET: &str = "thumbv7em-none-eabihf";
/// QEMU's model of an Arm MPS2 board with the AN386 image: a Cortex-M4 with FPU.
const MACHINE: &str = "mps2-an386";
/// A run that takes longer than this has hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Allowed growth over a figure in `budget.txt`.
const BUDGET_SLACK: f64 = 0.10;
/// Hard limits of the issue: heapless inference build and on-device training.
const FLASH_LIMIT: u64 = 32 * 1024;
const RAM_LIMIT: u64 = 8 * 1024;
const HEAP_LIMIT: u64 = 64 * 1024;
/// ARMv7-M's default memory map: the SRAM region is 0x2000_0000..0x4000_0000; the
/// code region (flash) lies below it.
const SRAM_REGION: std::ops::Range<u64> = 0x2000_0000..0x4000_0000;

/// One firmware binary: its name and the cargo feature arguments it is built with.
struct Bin {
    name: &'static str,
    features: &'static [&'static str],
}

/// `infer` without the `heap` feature: nothing links `alloc`, which is the proof that
/// inference needs no heap. `demo` with the default features (the fixed heap).
const BINS: [Bin; 2] = [
    Bin {
        name: "infer",
        features: &["--no-default-features"],
    },
    Bin {
        name: "demo",
        features: &[],
    },
];

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(FIRMWARE_DIR)
}

/// The ELF of `bin`, where cargo puts it for the firmware's own build.
fn elf_path(bin: &str) -> PathBuf {
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => firmware_dir().join("target"),
    };
    target_dir.join(TARGET).join("release").join(bin)
}

fn build(bin: &Bin) -> Result {
    let mut cmd = cargo();
    cmd.current_dir(firmware_dir())
        .args(["build", "--release", "--bin", bin.name])
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
            "building firmware `{}` printed warnings:\n{}",
            bin.name,
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

/// Runs `elf` under QEMU with semihosting, pipes its output through defmt-print, and
/// returns (exit success, decoded log).
fn run_qemu(elf: &Path) -> Result<(bool, String)> {
    let mut qemu = Command::new("qemu-system-arm");
    qemu.args(["-machine", MACHINE, "-cpu", "cortex-m4"])
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

/// Compares `log` with the golden file; with `bless`, rewrites the golden file
/// (keeping each golden line that still matches, so its `{?}` masks survive).
fn check_golden(name: &str, log: &str, bless: bool) -> Result {
    let path = firmware_dir().join("golden").join(format!("{name}.out"));
    let golden = fs::read_to_string(&path).unwrap_or_default();
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
        fs::write(&path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
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

/// `cargo xtask qemu [--bless]`.
pub fn qemu(args: &[String]) -> Result {
    let bless = args.iter().any(|a| a == "--bless");
    require_tool("qemu-system-arm", "apt-get install qemu-system-arm")?;
    require_tool("defmt-print", "cargo install defmt-print")?;
    crate::ensure_target(TARGET)?;
    let mut logs = Vec::new();
    for bin in &BINS {
        build(bin)?;
        let (ok, log) = run_qemu(&elf_path(bin.name))?;
        if !ok {
            return Err(format!(
                "firmware `{}` exited with failure under QEMU",
                bin.name
            ));
        }
        check_golden(bin.name, &log, bless)?;
        logs.push(log);
    }
    let (infer_log, demo_log) = (&logs[0], &logs[1]);

    let sections = read_sections(&elf_path("infer"))?;
    let fp = Footprint::of(&sections);
    let stack = figure(infer_log, "stack high-water:")?;
    let insns = figure(infer_log, "instructions per inference:")?;
    let heap = figure(demo_log, "arena touched:")?;
    let ram = fp.static_ram + stack;
    println!(
        "\nheapless inference (`infer`, digits MLP 64-32-10, f32), samples excluded:\n  \
         flash {} B (code + weights), RAM {} B (static {} B + stack {} B), {} instructions per inference\n\
         on-device training (`demo`): heap arena touched {} B",
        fp.flash, ram, fp.static_ram, stack, insns, heap
    );
    let mut failures = Vec::new();
    for (what, value, limit) in [
        ("flash", fp.flash, FLASH_LIMIT),
        ("RAM", ram, RAM_LIMIT),
        ("heap", heap, HEAP_LIMIT),
    ] {
        if value > limit {
            failures.push(format!("{what} {value} B is over the limit of {limit} B"));
        }
    }
    let budget = read_budget()?;
    for (key, value) in [
        ("flash_bytes", fp.flash),
        ("ram_bytes", ram),
        ("instructions_per_inference", insns),
        ("training_heap_bytes", heap),
    ] {
        match budget.iter().find(|(k, _)| k == key) {
            None => failures.push(format!("budget.txt has no `{key}`")),
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
    if failures.is_empty() {
        println!("firmware: golden logs match, figures within budget");
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn read_budget() -> Result<Vec<(String, u64)>> {
    let path = firmware_dir().join("budget.txt");
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "{}:{}: expected `key value`",
                path.display(),
                i + 1
            ));
        };
        let value = value
            .parse()
            .map_err(|_| format!("{}:{}: `{value}` is not a number", path.display(), i + 1))?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// `cargo xtask size`: builds both binaries and prints their sections.
pub fn size(_args: &[String]) -> Result {
    crate::ensure_target(TARGET)?;
    for bin in &BINS {
        build(bin)?;
        let elf = elf_path(bin.name);
        let sections = read_sections(&elf)?;
        println!("{} ({}):", bin.name, elf.display());
        println!(
            "  {:<16} {:>9} {:>12}  where",
            "section", "bytes", "address"
        );
        for s in sections.iter().filter(|s| s.alloc) {
            let place = match (s.in_ram(), s.name.as_str()) {
                (true, ".data") => "RAM (+ its initial values in flash)",
                (true, _) => "RAM",
                (false, ".samples") => "flash (embedded data set, not counted)",
                (false, _) => "flash",
            };
            println!("  {:<16} {:>9} {:>#12x}  {place}", s.name, s.size, s.addr);
        }
        let fp = Footprint::of(&sections);
        println!(
            "  flash (code + weights) {} B, static RAM {} B, samples {} B\n",
            fp.flash, fp.static_ram, fp.samples
        );
    }
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
}

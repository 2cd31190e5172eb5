//! Timing and JSON output shared by the peer binaries, mirroring `xtask/peers/torch_bench.py`.

use std::fmt::Write as _;
use std::time::Instant;

/// Median, min and max seconds per call over the samples.
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// Command line: `THREADS [--quick]`.
pub struct Args {
    pub threads: usize,
    pub quick: bool,
}

pub fn args() -> Args {
    let mut threads = 2;
    let mut quick = false;
    for a in std::env::args().skip(1) {
        if a == "--quick" {
            quick = true;
        } else if let Ok(n) = a.parse::<usize>() {
            threads = n.max(1);
        } else {
            eprintln!("usage: THREADS [--quick] (ignoring {a})");
        }
    }
    Args { threads, quick }
}

/// Same method as torch_bench.py: 3 warm-up calls, one call to size the repetitions,
/// then `samples` samples of `reps` calls totalling about `target_s`.
pub fn timed<E: std::fmt::Display>(
    quick: bool,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<Stat, String> {
    let (target_s, samples) = if quick { (0.02, 2) } else { (0.5, 15) };
    let mut call = || f().map_err(|e| e.to_string());
    for _ in 0..3 {
        call()?;
    }
    let t0 = Instant::now();
    call()?;
    let one = t0.elapsed().as_secs_f64().max(1e-7);
    let reps = ((target_s / samples as f64 / one) as usize).max(1);
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t0 = Instant::now();
        for _ in 0..reps {
            call()?;
        }
        out.push(t0.elapsed().as_secs_f64() / reps as f64);
    }
    out.sort_by(f64::total_cmp);
    // Python's statistics.median: mean of the two middle values for an even count.
    let n = out.len();
    let median = if n % 2 == 1 {
        out[n / 2]
    } else {
        (out[n / 2 - 1] + out[n / 2]) / 2.0
    };
    Ok(Stat {
        median,
        min: out[0],
        max: out[n - 1],
    })
}

/// Collects results and notes; prints the one JSON line the xtask parses.
pub struct Report {
    results: Vec<(String, Stat)>,
    notes: Vec<(String, String)>,
}

impl Report {
    pub fn new() -> Self {
        Report {
            results: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Records a timed workload, or its error as a note (the workload is then absent).
    pub fn add(&mut self, id: &str, r: Result<Stat, String>) {
        match r {
            Ok(s) => self.results.push((id.to_string(), s)),
            Err(e) => self.note(id, &format!("failed: {e}")),
        }
    }

    /// Explains why a workload is absent or how it was built.
    pub fn note(&mut self, id: &str, text: &str) {
        self.notes.push((id.to_string(), text.to_string()));
    }

    pub fn print(&self, peer: &str, version: &str, backend: &str, threads: usize) {
        // Keep the values trivially parseable by the xtask: no quotes, braces or escapes.
        let esc = |s: &str| {
            s.chars()
                .map(|c| match c {
                    '"' => '\'',
                    '{' => '(',
                    '}' => ')',
                    '\\' => '/',
                    c if c.is_control() => ' ',
                    c => c,
                })
                .collect::<String>()
        };
        let mut s = format!(
            "{{\"peer\": \"{peer}\", \"version\": \"{version}\", \"backend\": \"{}\", \"threads\": {threads}, \"results\": {{",
            esc(backend)
        );
        for (k, (id, st)) in self.results.iter().enumerate() {
            let _ = write!(
                s,
                "{}\"{id}\": {{\"median\": {:e}, \"min\": {:e}, \"max\": {:e}}}",
                if k > 0 { ", " } else { "" },
                st.median,
                st.min,
                st.max
            );
        }
        s += "}, \"notes\": {";
        for (k, (id, text)) in self.notes.iter().enumerate() {
            let _ = write!(
                s,
                "{}\"{id}\": \"{}\"",
                if k > 0 { ", " } else { "" },
                esc(text)
            );
        }
        s += "}}";
        println!("{s}");
    }
}

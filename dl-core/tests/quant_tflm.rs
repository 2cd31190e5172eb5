//! TFLite Micro as referee: builds a small C++ program around TFLM's own reference
//! kernels (and the parameter preparation of its `micro/kernels/*_common.cc`, copied
//! verbatim where it needs a `TfLiteContext`), feeds it random cases, and requires
//! every `dl_core::quant` kernel, on every available `Kernel`, to print the same bytes.
//!
//! Ignored by default: it needs `g++` and the sources. Run it with
//!
//! ```text
//! TFLM_DIR=/path/to/tflite-micro GEMMLOWP_DIR=/path/to/gemmlowp \
//!     cargo test -p dl-core --release --test quant_tflm -- --ignored
//! ```
//!
//! (`QUANT_TFLM_SEED` and `QUANT_TFLM_ITERS` change the cases.) Checked against
//! tflite-micro 90b983c2 (2026-08-20) and gemmlowp 16e8662c: ~570k comparisons over five
//! seeds of 2000 iterations, no difference. The values pinned in `tests/quant.rs` as
//! "TFLM" were printed by this harness.

use dl_core::quant::*;
use dl_core::Rng;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The referee: reads one case per line on stdin, prints TFLM's answer.
const HARNESS: &str = r##"// Differential referee: runs TFLM's own reference kernels on cases read from stdin.
#include <cstdio>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>
#include <algorithm>
#include <cmath>

#include "tensorflow/lite/kernels/internal/common.h"
#include "tensorflow/lite/kernels/internal/quantization_util.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/conv.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/depthwise_conv.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/pooling.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/add.h"
#include "tensorflow/lite/kernels/internal/reference/softmax.h"
#include "tensorflow/lite/kernels/internal/reference/reduce.h"
#include "tensorflow/lite/kernels/internal/reference/quantize.h"
#include "tensorflow/lite/kernels/internal/reference/dequantize.h"

using namespace tflite;
RuntimeShape RS(std::initializer_list<int32_t> d) { std::vector<int32_t> v(d); return RuntimeShape((int)v.size(), v.data()); }

template <class T> std::vector<T> readv(int n) {
  std::vector<T> v(n);
  for (int i = 0; i < n; ++i) { long long t; std::cin >> t; v[i] = (T)t; }
  return v;
}
std::vector<float> readf(int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) { std::string s; std::cin >> s; v[i] = std::strtof(s.c_str(), nullptr); }
  return v;
}
template <class T> void printv(const std::vector<T>& v) {
  for (auto x : v) std::cout << (long long)x << ' ';
  std::cout << '\n';
}

int main() {
  std::string cmd;
  while (std::cin >> cmd) {
    if (cmd == "qm") {
      std::string s; std::cin >> s; double d = std::strtod(s.c_str(), nullptr);
      int32_t m; int sh; QuantizeMultiplier(d, &m, &sh);
      std::cout << m << ' ' << sh << '\n';
    } else if (cmd == "mbqm") {
      long long x, m, s; std::cin >> x >> m >> s;
      std::cout << MultiplyByQuantizedMultiplier((int32_t)x, (int32_t)m, (int)s) << '\n';
    } else if (cmd == "fc") {
      int batch, in, out, izp, ozp, amin, amax, nq; std::cin >> batch >> in >> out >> izp >> ozp >> amin >> amax >> nq;
      auto x = readv<int8_t>(batch * in); auto w = readv<int8_t>(out * in); auto b = readv<int32_t>(out);
      auto m = readv<int32_t>(nq); auto s = readv<int>(nq);
      std::vector<int32_t> mm(out); std::vector<int> ss(out);
      for (int o = 0; o < out; ++o) { mm[o] = m[nq == 1 ? 0 : o]; ss[o] = s[nq == 1 ? 0 : o]; }
      FullyConnectedParams p{}; p.input_offset = -izp; p.output_offset = ozp; p.quantized_activation_min = amin; p.quantized_activation_max = amax;
      std::vector<int8_t> y(batch * out);
      reference_integer_ops::FullyConnectedPerChannel<int8_t, int8_t, int8_t, int32_t>(p, mm.data(), ss.data(), RS({batch, in}), x.data(), RS({out, in}), w.data(), RS({out}), b.data(), RS({batch, out}), y.data());
      printv(y);
    } else if (cmd == "conv" || cmd == "dw") {
      int n, h, w_, cin, cout, kh, kw, sh, sw, ph, pw, dh, dw_, oh, ow, groups, izp, ozp, amin, amax, nq;
      std::cin >> n >> h >> w_ >> cin >> cout >> kh >> kw >> sh >> sw >> ph >> pw >> dh >> dw_ >> oh >> ow >> groups >> izp >> ozp >> amin >> amax >> nq;
      int cg = cin / groups;
      auto x = readv<int8_t>(n * h * w_ * cin); auto w = readv<int8_t>(cout * kh * kw * cg); auto b = readv<int32_t>(cout);
      auto m = readv<int32_t>(nq); auto s = readv<int32_t>(nq);
      std::vector<int32_t> mm(cout), ss(cout);
      for (int o = 0; o < cout; ++o) { mm[o] = m[nq == 1 ? 0 : o]; ss[o] = s[nq == 1 ? 0 : o]; }
      std::vector<int8_t> y(n * oh * ow * cout);
      if (cmd == "conv") {
        ConvParams p{}; p.input_offset = -izp; p.output_offset = ozp; p.stride_height = sh; p.stride_width = sw;
        p.dilation_height_factor = dh; p.dilation_width_factor = dw_; p.padding_values.height = ph; p.padding_values.width = pw;
        p.quantized_activation_min = amin; p.quantized_activation_max = amax;
        reference_integer_ops::ConvPerChannel(p, mm.data(), ss.data(), RS({n, h, w_, cin}), x.data(), RS({cout, kh, kw, cg}), w.data(), RS({cout}), b.data(), RS({n, oh, ow, cout}), y.data());
      } else {
        // Our OHWI [cout, kh, kw, 1] -> TFLite [1, kh, kw, cout].
        std::vector<int8_t> wt(cout * kh * kw);
        for (int o = 0; o < cout; ++o) for (int t = 0; t < kh * kw; ++t) wt[t * cout + o] = w[o * kh * kw + t];
        DepthwiseParams p{}; p.input_offset = -izp; p.output_offset = ozp; p.stride_height = sh; p.stride_width = sw;
        p.dilation_height_factor = dh; p.dilation_width_factor = dw_; p.padding_values.height = ph; p.padding_values.width = pw;
        p.depth_multiplier = cout / cin; p.quantized_activation_min = amin; p.quantized_activation_max = amax;
        reference_integer_ops::DepthwiseConvPerChannel(p, mm.data(), ss.data(), RS({n, h, w_, cin}), x.data(), RS({1, kh, kw, cout}), wt.data(), RS({cout}), b.data(), RS({n, oh, ow, cout}), y.data());
      }
      printv(y);
    } else if (cmd == "avg" || cmd == "max") {
      int n, h, w, c, kh, kw, sh, sw, ph, pw, oh, ow, amin, amax; std::cin >> n >> h >> w >> c >> kh >> kw >> sh >> sw >> ph >> pw >> oh >> ow >> amin >> amax;
      auto x = readv<int8_t>(n * h * w * c);
      PoolParams p{}; p.stride_height = sh; p.stride_width = sw; p.filter_height = kh; p.filter_width = kw;
      p.padding_values.height = ph; p.padding_values.width = pw; p.quantized_activation_min = amin; p.quantized_activation_max = amax;
      std::vector<int8_t> y(n * oh * ow * c);
      if (cmd == "avg") {
        bool ok = reference_integer_ops::AveragePool(p, RS({n, h, w, c}), x.data(), RS({n, oh, ow, c}), y.data());
        if (!ok) { std::cout << "fail\n"; continue; }
      } else {
        reference_integer_ops::MaxPool(p, RS({n, h, w, c}), x.data(), RS({n, oh, ow, c}), y.data());
      }
      printv(y);
    } else if (cmd == "add") {
      std::string t; float s1, s2, so; int z1, z2, zo, amin, amax, la, lb;
      std::cin >> t; s1 = std::strtof(t.c_str(), nullptr); std::cin >> z1;
      std::cin >> t; s2 = std::strtof(t.c_str(), nullptr); std::cin >> z2;
      std::cin >> t; so = std::strtof(t.c_str(), nullptr); std::cin >> zo >> amin >> amax >> la >> lb;
      auto a = readv<int8_t>(la); auto b = readv<int8_t>(lb);
      // Verbatim from micro/kernels/add_common.cc CalculateOpDataAdd (int8 branch).
      ArithmeticParams data{};
      data.input1_offset = -z1; data.input2_offset = -z2; data.output_offset = zo; data.left_shift = 20;
      const double twice_max_input_scale = 2 * static_cast<double>(std::max(s1, s2));
      const double real_input1_multiplier = static_cast<double>(s1) / twice_max_input_scale;
      const double real_input2_multiplier = static_cast<double>(s2) / twice_max_input_scale;
      const double real_output_multiplier = twice_max_input_scale / ((1 << data.left_shift) * static_cast<double>(so));
      QuantizeMultiplierSmallerThanOneExp(real_input1_multiplier, &data.input1_multiplier, &data.input1_shift);
      QuantizeMultiplierSmallerThanOneExp(real_input2_multiplier, &data.input2_multiplier, &data.input2_shift);
      QuantizeMultiplierSmallerThanOneExp(real_output_multiplier, &data.output_multiplier, &data.output_shift);
      data.quantized_activation_min = amin; data.quantized_activation_max = amax;
      std::cout << data.input1_multiplier << ' ' << data.input1_shift << ' ' << data.input2_multiplier << ' ' << data.input2_shift << ' ' << data.output_multiplier << ' ' << data.output_shift << '\n';
      int len = std::max(la, lb);
      std::vector<int8_t> y(len);
      if (la == lb) reference_integer_ops::Add(data, RS({len}), a.data(), RS({len}), b.data(), RS({len}), y.data());
      else if (la == 1) reference_integer_ops::BroadcastInput1<int8_t>(len, data, a.data(), b.data(), y.data(), reference_integer_ops::CheckArithmeticParams, reference_integer_ops::AddFunc);
      else reference_integer_ops::BroadcastInput2<int8_t>(len, data, a.data(), b.data(), y.data(), reference_integer_ops::CheckArithmeticParams, reference_integer_ops::AddFunc);
      printv(y);
    } else if (cmd == "softmax") {
      std::string t; float scale, beta; int rows, len;
      std::cin >> t; scale = std::strtof(t.c_str(), nullptr); std::cin >> t; beta = std::strtof(t.c_str(), nullptr);
      std::cin >> rows >> len;
      auto x = readv<int8_t>(rows * len);
      // micro/kernels/softmax_common.cc CalculateSoftmaxParams, int8 -> int8 branch.
      SoftmaxParams op{};
      static const int kScaledDiffIntegerBits = 5;
      int input_left_shift;
      PreprocessSoftmaxScaling(static_cast<double>(beta), static_cast<double>(scale), kScaledDiffIntegerBits, &op.input_multiplier, &input_left_shift);
      op.input_left_shift = input_left_shift;
      op.diff_min = -1.0 * CalculateInputRadius(kScaledDiffIntegerBits, op.input_left_shift);
      std::cout << op.input_multiplier << ' ' << op.input_left_shift << ' ' << op.diff_min << '\n';
      std::vector<int8_t> y(rows * len);
      reference_ops::Softmax(op, RS({rows, len}), x.data(), RS({rows, len}), y.data());
      printv(y);
    } else if (cmd == "mean") {
      std::string t; float sin, sout; int n, h, w, c, zin, zout;
      std::cin >> n >> h >> w >> c;
      std::cin >> t; sin = std::strtof(t.c_str(), nullptr); std::cin >> zin;
      std::cin >> t; sout = std::strtof(t.c_str(), nullptr); std::cin >> zout;
      auto x = readv<int8_t>(n * h * w * c);
      int32_t multiplier; int shift;
      const double real_multiplier = static_cast<double>(sin) / static_cast<double>(sout);
      QuantizeMultiplier(real_multiplier, &multiplier, &shift);
      std::cout << multiplier << ' ' << shift << '\n';
      int in_dims[4] = {n, h, w, c}; int out_dims[4] = {n, 1, 1, c}; int axis[2] = {1, 2};
      int temp_index[4]; int resolved[2]; std::vector<int32_t> temp_sum(n * c); std::vector<int8_t> y(n * c);
      bool ok = reference_ops::QuantizedMeanOrSum<int8_t, int32_t>(x.data(), zin, in_dims, 4, y.data(), multiplier, shift, zout, out_dims, 4, axis, 2, true, temp_index, resolved, temp_sum.data(), false);
      if (!ok) { std::cout << "fail\n"; continue; }
      printv(y);
    } else if (cmd == "quant") {
      std::string t; float scale; int zp, len; std::cin >> t; scale = std::strtof(t.c_str(), nullptr); std::cin >> zp >> len;
      auto x = readf(len);
      QuantizationParams p; p.zero_point = zp; p.scale = static_cast<double>(scale);
      std::vector<int8_t> y(len);
      reference_ops::AffineQuantize(p, RS({len}), x.data(), RS({len}), y.data());
      printv(y);
    } else if (cmd == "dequant") {
      std::string t; float scale; int zp, len; std::cin >> t; scale = std::strtof(t.c_str(), nullptr); std::cin >> zp >> len;
      auto x = readv<int8_t>(len);
      DequantizationParams p; p.zero_point = zp; p.scale = static_cast<double>(scale);
      std::vector<float> y(len);
      reference_ops::Dequantize(p, RS({len}), x.data(), RS({len}), y.data());
      char buf[64];
      for (float v : y) { std::snprintf(buf, sizeof buf, "%a ", v); std::cout << buf; }
      std::cout << '\n';
    } else {
      std::cerr << "unknown " << cmd << '\n';
      return 1;
    }
    std::cout.flush();
  }
}
"##;

/// `ruy/profiler/instrumentation.h`, which `reference/reduce.h` includes for its
/// profiling labels only.
const RUY_STUB: &str = "#pragma once\nnamespace ruy { namespace profiler { struct ScopeLabel { template <class... A> explicit ScopeLabel(A...) {} }; } }\n";

fn build_harness() -> PathBuf {
    let var = |name: &str| {
        PathBuf::from(
            std::env::var(name).unwrap_or_else(|_| panic!("set {name} (see the module doc)")),
        )
    };
    let (tflm, gemmlowp) = (var("TFLM_DIR"), var("GEMMLOWP_DIR"));
    let dir = std::env::temp_dir().join(format!("dl_quant_tflm_{}", std::process::id()));
    std::fs::create_dir_all(dir.join("ruy/profiler")).unwrap();
    std::fs::write(dir.join("ruy/profiler/instrumentation.h"), RUY_STUB).unwrap();
    std::fs::write(dir.join("harness.cc"), HARNESS).unwrap();
    let internal = tflm.join("tensorflow/lite/kernels/internal");
    let exe = dir.join("harness");
    let status = Command::new("g++")
        .args(["-std=c++17", "-O1"])
        .arg(format!("-I{}", tflm.display()))
        .arg(format!("-I{}", gemmlowp.display()))
        .arg(format!("-I{}", dir.display()))
        .arg(dir.join("harness.cc"))
        .arg(internal.join("common.cc"))
        .arg(internal.join("quantization_util.cc"))
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("g++ runs");
    assert!(status.success(), "building the TFLM harness failed");
    exe
}

struct Ref {
    stdin: std::process::ChildStdin,
    out: BufReader<std::process::ChildStdout>,
}
impl Ref {
    fn ask(&mut self, q: &str) -> String {
        writeln!(self.stdin, "{q}").unwrap();
        self.stdin.flush().unwrap();
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l.trim().to_string()
    }
    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l.trim().to_string()
    }
}
fn nums(s: &str) -> Vec<i64> {
    s.split_whitespace().map(|t| t.parse().unwrap()).collect()
}
fn join<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}
fn r8(rng: &mut Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.next_u32() as i8).collect()
}
fn range(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    lo + rng.below((hi - lo + 1) as usize) as i64
}

#[test]
#[ignore = "needs TFLM's and gemmlowp's C++ sources (TFLM_DIR, GEMMLOWP_DIR), on no registry CI reaches"]
fn every_kernel_matches_tflite_micro() {
    let exe = build_harness();
    let mut child = Command::new(&exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut r = Ref {
        stdin: child.stdin.take().unwrap(),
        out: BufReader::new(child.stdout.take().unwrap()),
    };
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seed = env("QUANT_TFLM_SEED", 1);
    let iters = env("QUANT_TFLM_ITERS", 300) as usize;
    let mut fails = 0;
    let mut checks = 0usize;
    macro_rules! check {
        ($name:expr, $a:expr, $b:expr, $ctx:expr) => {
            checks += 1;
            if $a != $b {
                fails += 1;
                if fails < 20 {
                    eprintln!(
                        "MISMATCH {}: ours {:?} tflm {:?} ctx {}",
                        $name, $a, $b, $ctx
                    );
                }
            }
        };
    }

    let mut rng = Rng::seed_from_u64(seed);

    // quantize_multiplier
    for i in 0..iters * 20 {
        let e = range(&mut rng, -45, 40) as i32;
        let mut d = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2f64.powi(e);
        if i % 7 == 0 {
            d = 2f64.powi(e);
        }
        if i % 11 == 0 {
            d = (1.0 - 2f64.powi(-(range(&mut rng, 20, 53) as i32))) * 2f64.powi(e);
        }
        let t = nums(&r.ask(&format!("qm {d:e}")));
        let ours = quantize_multiplier(d).unwrap();
        check!("qm", (ours.0 as i64, ours.1 as i64), (t[0], t[1]), d);
    }
    // mbqm
    for _ in 0..iters * 20 {
        let x = rng.next_u32() as i32 >> range(&mut rng, 0, 31);
        let m = (1i64 << 30) + range(&mut rng, 0, (1 << 30) - 1);
        let s = range(&mut rng, -31, 30);
        let x = if s > 0 { x >> s.min(31) } else { x };
        let t = nums(&r.ask(&format!("mbqm {x} {m} {s}")));
        check!(
            "mbqm",
            multiply_by_quantized_multiplier(x, m as i32, s as i32) as i64,
            t[0],
            format!("{x} {m} {s}")
        );
    }
    let kernels: Vec<Kernel> = Kernel::ALL
        .iter()
        .copied()
        .filter(|k| k.is_available())
        .collect();
    let rand_rq = |rng: &mut Rng, n: usize| -> (Vec<i32>, Vec<i8>) {
        let mut m = vec![];
        let mut s = vec![];
        for _ in 0..n {
            let real = 2f64.powf(-(rng.below(2000) as f64) / 100.0 - 2.0);
            let (mm, ss) = quantize_multiplier(real).unwrap();
            m.push(mm);
            s.push(ss as i8);
        }
        (m, s)
    };
    // dense
    for _ in 0..iters {
        let (batch, inf, outf) = (1 + rng.below(5), rng.below(200), 1 + rng.below(40));
        let izp = range(&mut rng, -128, 127) as i32;
        let ozp = range(&mut rng, -128, 127) as i32;
        let (amin, amax) = {
            let a = rng.next_u32() as i8;
            let b = rng.next_u32() as i8;
            (a.min(b), a.max(b))
        };
        let x = r8(&mut rng, batch * inf);
        let w = r8(&mut rng, outf * inf);
        let bias: Vec<i32> = (0..outf).map(|_| (rng.next_u32() as i32) >> 12).collect();
        let nq = if rng.below(2) == 0 { 1 } else { outf };
        let (m, s) = rand_rq(&mut rng, nq);
        let t = nums(&r.ask(&format!(
            "fc {batch} {inf} {outf} {izp} {ozp} {amin} {amax} {nq} {} {} {} {} {}",
            join(&x),
            join(&w),
            join(&bias),
            join(&m),
            join(&s)
        )));
        let mut be = vec![0; outf];
        fold_input_offset(&w, outf, inf, Some(&bias), izp, &mut be).unwrap();
        let rq = Requant {
            multiplier: &m,
            shift: &s,
            output_zero_point: ozp,
            act_min: amin,
            act_max: amax,
        };
        for &k in &kernels {
            let mut y = vec![0i8; batch * outf];
            dense_s8_with(k, &x, &w, &be, &rq, batch, inf, outf, &mut y).unwrap();
            let y: Vec<i64> = y.iter().map(|&v| v as i64).collect();
            check!(
                format!("dense {k:?}"),
                y,
                t,
                format!("{batch} {inf} {outf}")
            );
        }
    }
    // conv + depthwise
    for it in 0..iters {
        let depthwise = it % 3 == 0;
        let n = 1 + rng.below(2);
        let (h, w) = (1 + rng.below(9), 1 + rng.below(9));
        let (kh, kw) = (1 + rng.below(4), 1 + rng.below(4));
        let (sh, sw) = (1 + rng.below(3), 1 + rng.below(3));
        let (dh, dw) = (1 + rng.below(2), 1 + rng.below(2));
        let (ph, pw) = (rng.below(kh * dh), rng.below(kw * dw));
        let (cin, cout, groups) = if depthwise {
            let c = 1 + rng.below(6);
            (c, c * (1 + rng.below(3)), c)
        } else {
            let g = 1 + rng.below(3);
            (g * (1 + rng.below(5)), g * (1 + rng.below(5)), g)
        };
        let g = match ConvGeometry::new(
            n,
            h,
            w,
            cin,
            cout,
            kh,
            kw,
            (sh, sw),
            (ph, pw),
            (dh, dw),
            groups,
        ) {
            Ok(g) => g,
            Err(_) => continue,
        };
        // Sometimes TFLite SAME-style sizes (one more output than PyTorch's).
        let g = if it % 4 == 1 {
            g.with_output_size(g.out_h + rng.below(2), g.out_w + rng.below(2))
                .unwrap()
        } else {
            g
        };
        let izp = range(&mut rng, -128, 127) as i8;
        let ozp = range(&mut rng, -128, 127) as i32;
        let x = r8(&mut rng, g.input_len());
        let wts = r8(&mut rng, g.weight_len());
        let bias: Vec<i32> = (0..cout).map(|_| (rng.next_u32() as i32) >> 14).collect();
        let nq = if rng.below(2) == 0 { 1 } else { cout };
        let (m, s) = rand_rq(&mut rng, nq);
        let cmd = if depthwise && groups == cin && rng.below(2) == 0 {
            "dw"
        } else {
            "conv"
        };
        let t = nums(&r.ask(&format!(
            "{cmd} {n} {h} {w} {cin} {cout} {kh} {kw} {sh} {sw} {ph} {pw} {dh} {dw} {} {} {groups} {izp} {ozp} -128 127 {nq} {} {} {} {} {}",
            g.out_h, g.out_w, join(&x), join(&wts), join(&bias), join(&m), join(&s)
        )));
        let mut be = vec![0; cout];
        fold_input_offset(
            &wts,
            cout,
            g.weight_len() / cout,
            Some(&bias),
            izp as i32,
            &mut be,
        )
        .unwrap();
        let rq = Requant {
            multiplier: &m,
            shift: &s,
            output_zero_point: ozp,
            act_min: -128,
            act_max: 127,
        };
        for &k in &kernels {
            let mut y = vec![0i8; g.output_len()];
            let mut scratch = vec![0i8; g.scratch_len()];
            conv2d_s8_with(k, &g, &x, &wts, &be, izp, &rq, &mut scratch, &mut y).unwrap();
            let y: Vec<i64> = y.iter().map(|&v| v as i64).collect();
            check!(format!("{cmd} {k:?}"), y, t, format!("{g:?}"));
        }
    }
    // pooling
    for it in 0..iters {
        let (n, h, w, c) = (
            1 + rng.below(2),
            1 + rng.below(9),
            1 + rng.below(9),
            1 + rng.below(5),
        );
        let (kh, kw) = (1 + rng.below(4), 1 + rng.below(4));
        let (sh, sw) = (1 + rng.below(3), 1 + rng.below(3));
        let (ph, pw) = (rng.below(kh / 2 + 1), rng.below(kw / 2 + 1));
        let g = match PoolGeometry::new(n, h, w, c, kh, kw, (sh, sw), (ph, pw)) {
            Ok(g) => g,
            Err(_) => continue,
        };
        let g = if it % 3 == 1 {
            match g.with_output_size(g.out_h + rng.below(2), g.out_w + rng.below(2)) {
                Ok(g) => g,
                Err(_) => g,
            }
        } else {
            g
        };
        let (amin, amax) = {
            let a = rng.next_u32() as i8;
            let b = rng.next_u32() as i8;
            (a.min(b), a.max(b))
        };
        let x = r8(&mut rng, g.input_len());
        for op in ["avg", "max"] {
            let t = r.ask(&format!(
                "{op} {n} {h} {w} {c} {kh} {kw} {sh} {sw} {ph} {pw} {} {} {amin} {amax} {}",
                g.out_h,
                g.out_w,
                join(&x)
            ));
            let mut y = vec![0i8; g.output_len()];
            if op == "avg" {
                avg_pool_s8(&g, &x, 0, false, amin, amax, &mut y).unwrap();
            } else {
                max_pool_s8(&g, &x, amin, amax, &mut y).unwrap();
            }
            let y: Vec<i64> = y.iter().map(|&v| v as i64).collect();
            check!(op, y, nums(&t), format!("{g:?}"));
        }
    }
    // add
    for _ in 0..iters {
        let s1 = 2f32.powf(-(rng.below(1000) as f32) / 100.0);
        let s2 = 2f32.powf(-(rng.below(1000) as f32) / 100.0);
        let so = 2f32.powf(-(rng.below(1000) as f32) / 100.0) * 2.0;
        let (z1, z2, zo) = (
            range(&mut rng, -128, 127),
            range(&mut rng, -128, 127),
            range(&mut rng, -128, 127),
        );
        let len = 1 + rng.below(50);
        let (la, lb) = match rng.below(4) {
            0 => (1, len),
            1 => (len, 1),
            _ => (len, len),
        };
        let a = r8(&mut rng, la);
        let b = r8(&mut rng, lb);
        let (amin, amax) = {
            let a = rng.next_u32() as i8;
            let b = rng.next_u32() as i8;
            (a.min(b), a.max(b))
        };
        let params = nums(&r.ask(&format!(
            "add {s1:e} {z1} {s2:e} {z2} {so:e} {zo} {amin} {amax} {la} {lb} {} {}",
            join(&a),
            join(&b)
        )));
        let t = nums(&r.line());
        let p = add_params(
            s1 as f64, z1 as i32, s2 as f64, z2 as i32, so as f64, zo as i32, amin, amax,
        )
        .unwrap();
        check!(
            "add params",
            vec![
                p.input1_multiplier as i64,
                p.input1_shift as i64,
                p.input2_multiplier as i64,
                p.input2_shift as i64,
                p.output_multiplier as i64,
                p.output_shift as i64
            ],
            params,
            ""
        );
        let mut y = vec![0i8; len];
        add_s8(&p, &a, &b, &mut y).unwrap();
        let y: Vec<i64> = y.iter().map(|&v| v as i64).collect();
        check!("add", y, t, "");
    }
    // softmax
    for _ in 0..iters {
        let scale = 2f32.powf(-(rng.below(3000) as f32) / 100.0 + 6.0);
        let beta = [1.0f32, 0.5, 2.0, 1.7][rng.below(4)];
        let (rows, len) = (1 + rng.below(3), 1 + rng.below(40));
        let x = r8(&mut rng, rows * len);
        let params = nums(&r.ask(&format!(
            "softmax {scale:e} {beta:e} {rows} {len} {}",
            join(&x)
        )));
        let t = nums(&r.line());
        let p = softmax_params(scale as f64, beta as f64).unwrap();
        check!(
            "softmax params",
            vec![
                p.input_multiplier as i64,
                p.input_left_shift as i64,
                p.diff_min as i64
            ],
            params,
            scale
        );
        let mut y = vec![0i8; rows * len];
        softmax_s8(&p, &x, len, &mut y).unwrap();
        let y: Vec<i64> = y.iter().map(|&v| v as i64).collect();
        check!("softmax", y, t, format!("{scale} {beta}"));
    }
    // mean
    for _ in 0..iters {
        let (n, h, w, c) = (
            1 + rng.below(2),
            1 + rng.below(12),
            1 + rng.below(12),
            1 + rng.below(4),
        );
        let sin = 2f32.powf(-(rng.below(800) as f32) / 100.0);
        let sout = if rng.below(3) == 0 {
            sin
        } else {
            2f32.powf(-(rng.below(800) as f32) / 100.0)
        };
        let (zin, zout) = (range(&mut rng, -128, 127), range(&mut rng, -128, 127));
        let x = r8(&mut rng, n * h * w * c);
        let params = nums(&r.ask(&format!(
            "mean {n} {h} {w} {c} {sin:e} {zin} {sout:e} {zout} {}",
            join(&x)
        )));
        let t = nums(&r.line());
        let p = mean_params(sin as f64, zin as i32, sout as f64, zout as i32).unwrap();
        check!(
            "mean params",
            vec![p.multiplier as i64, p.shift as i64],
            params,
            ""
        );
        let mut y = vec![0i8; n * c];
        mean_hw_s8(&p, n, h, w, c, &x, &mut y).unwrap();
        let y: Vec<i64> = y.iter().map(|&v| v as i64).collect();
        check!("mean", y, t, "");
    }
    // quantize / dequantize
    for _ in 0..iters {
        let scale = 2f32.powf(-(rng.below(1000) as f32) / 100.0 + 1.0);
        let zp = range(&mut rng, -128, 127) as i32;
        let len = 1 + rng.below(40);
        let x: Vec<f32> = (0..len)
            .map(|i| {
                if i % 5 == 0 {
                    (rng.below(400) as f32 - 200.0 + 0.5) * scale
                } else {
                    rng.uniform(-200.0f32, 200.0) * scale
                }
            })
            .collect();
        let t = nums(&r.ask(&format!(
                "quant {scale:e} {zp} {len} {}",
                x.iter()
                    .map(|v| format!("{v:e}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )));
        let mut y = vec![0i8; len];
        quantize_f32_s8(&x, scale, zp, &mut y).unwrap();
        let y: Vec<i64> = y.iter().map(|&v| v as i64).collect();
        check!("quant", y, t, "");
        let q = r8(&mut rng, len);
        let t = r.ask(&format!("dequant {scale:e} {zp} {len} {}", join(&q)));
        let mut y = vec![0f32; len];
        dequantize_s8_f32(&q, scale, zp, &mut y).unwrap();
        let tv: Vec<u32> = t
            .split_whitespace()
            .map(|s| parse_hex_f32(s).to_bits())
            .collect();
        let yv: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
        check!("dequant", yv, tv, "");
    }
    drop(r);
    let _ = child.wait();
    eprintln!("{checks} comparisons with TFLM, {fails} differences");
    assert_eq!(fails, 0);
}

fn parse_hex_f32(s: &str) -> f32 {
    // "%a" of a float promoted to double: [-]0x1.hhhp[+-]d or 0x0p+0
    let neg = s.starts_with('-');
    let s = s.trim_start_matches('-').trim_start_matches("0x");
    let (mant, exp) = s.split_once('p').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = u64::from_str_radix(int, 16).unwrap() as f64;
    let mut scale = 1.0 / 16.0;
    for ch in frac.chars() {
        v += ch.to_digit(16).unwrap() as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    (if neg { -v } else { v }) as f32
}

//! Which ops the gradient checks really ran, against the list of every op.
//!
//! [`TABLE`] names, for every variant of [`Op`] (and every [`Unary`] and [`Binary`]
//! function, which share one `Op` variant each), the test file and the
//! finite-difference tests that cover it. It is made by the same macro as the
//! exhaustive `match` in [`name`] (no `_` arm), so a new variant does not compile
//! until someone names its tests here.
//!
//! The list cannot lie: every checked graph is walked from its loss ([`record`]) and
//! each node that backward differentiates through (and each leaf) is logged with the
//! name of the test that built it. [`assert_covered`] runs the test binary again with
//! the log on, and requires every test named for a variant of this file to have
//! produced that variant on a checked graph.

use dl_autograd::{Graph, Op, Var};
use dl_core::elementwise::{Binary, Unary};
use dl_core::Scalar;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// Set in the child run: log the ops each test's checked graphs hold to stderr.
const LOG_VAR: &str = "GRADCHECK_OPS_LOG";
/// Prefix of a log line: `GRADCHECK_OP\t<test>\t<op>`.
const LOG_TAG: &str = "GRADCHECK_OP";

/// One row of [`TABLE`]: an op, the test file and the tests that check it.
pub struct Entry {
    pub op: &'static str,
    pub file: &'static str,
    pub tests: &'static [&'static str],
}

/// Builds, from one list, a `match` naming each variant of `$ty` (exhaustive: no `_`
/// arm) and the table rows for the same variants.
macro_rules! covered {
    ($fn:ident, $rows:ident, $ty:ident, $prefix:literal,
     { $($v:ident => $file:literal [$($t:literal),+ $(,)?]),+ $(,)? }) => {
        fn $fn(x: &$ty) -> &'static str {
            match x {
                $($ty::$v { .. } => concat!($prefix, stringify!($v)),)+
            }
        }
        const $rows: &[Entry] = &[
            $(Entry { op: concat!($prefix, stringify!($v)), file: $file, tests: &[$($t),+] },)+
        ];
    };
}

covered!(op_name, OPS, Op, "", {
    // Every case's weights `W` are a copied input and its inputs variables.
    Input => "gradcheck" ["add_broadcast", "leaf_kinds"],
    InputRef => "gradcheck" ["leaf_kinds"],
    Variable => "gradcheck" ["add_broadcast", "leaf_kinds"],
    Param => "gradcheck" ["leaf_kinds"],
    Unary => "gradcheck" ["smooth_unary", "positive_unary", "kinked_unary", "relu6_off_kinks"],
    Binary => "gradcheck" ["add_broadcast", "sub_broadcast", "mul_broadcast", "div_broadcast",
                           "pow_broadcast", "maximum_minimum"],
    MatMul => "gradcheck" ["matmul_all_forms"],
    Linear => "gradcheck" ["linear_with_and_without_bias", "leaf_kinds"],
    Reduce => "gradcheck" ["sum_mean", "max_axis"],
    // Every case's loss is `sum_all(f(inputs) * W)`.
    SumAll => "gradcheck" ["sum_mean", "add_broadcast"],
    MeanAll => "gradcheck" ["sum_mean"],
    Reshape => "gradcheck" ["reshape_permute"],
    Permute => "gradcheck" ["reshape_permute"],
    Concat => "gradcheck" ["concat_slice"],
    Slice => "gradcheck" ["concat_slice"],
    IndexSelect => "gradcheck" ["index_select"],
    Softmax => "gradcheck" ["softmax_log_softmax"],
    LogSoftmax => "gradcheck" ["softmax_log_softmax"],
    Conv2d => "gradcheck" ["conv2d", "conv2d_grouped", "conv2d_depthwise"],
    MaxPool2d => "gradcheck" ["pooling"],
    AvgPool2d => "gradcheck" ["pooling"],
    Dropout => "gradcheck" ["dropout"],
    BatchNorm => "gradcheck" ["batch_norm"],
    LayerNorm => "gradcheck" ["layer_norm"],
    CrossEntropy => "gradcheck" ["cross_entropy"],
    SoftCrossEntropy => "gradcheck" ["soft_cross_entropy"],
    BceWithLogits => "gradcheck" ["bce_with_logits"],
    Mse => "gradcheck" ["regression_losses"],
    Mae => "gradcheck" ["regression_losses"],
    Huber => "gradcheck" ["regression_losses"],
    Recurrent => "gradcheck_fused" ["rnn_tanh", "rnn_relu", "lstm", "lstm_final_states",
                                    "gru", "recurrent_padding"],
    SelfAttention => "gradcheck_fused" ["self_attention_qkv", "self_attention_layer",
                                        "self_attention_padding"],
});

covered!(unary_name, UNARY, Unary, "Unary::", {
    Neg => "gradcheck" ["smooth_unary"],
    Abs => "gradcheck" ["kinked_unary"],
    Exp => "gradcheck" ["smooth_unary"],
    Log => "gradcheck" ["positive_unary"],
    Sqrt => "gradcheck" ["positive_unary"],
    Square => "gradcheck" ["smooth_unary"],
    Recip => "gradcheck" ["positive_unary"],
    PowConst => "gradcheck" ["positive_unary"],
    Sigmoid => "gradcheck" ["smooth_unary"],
    Tanh => "gradcheck" ["smooth_unary"],
    Relu => "gradcheck" ["kinked_unary"],
    Relu6 => "gradcheck" ["relu6_off_kinks"],
    LeakyRelu => "gradcheck" ["kinked_unary"],
    Identity => "gradcheck" ["smooth_unary"],
    Gelu => "gradcheck" ["smooth_unary"],
    Silu => "gradcheck" ["smooth_unary"],
});

covered!(binary_name, BINARY, Binary, "Binary::", {
    Add => "gradcheck" ["add_broadcast", "scalar_ops"],
    Sub => "gradcheck" ["sub_broadcast"],
    Mul => "gradcheck" ["mul_broadcast", "scalar_ops"],
    Div => "gradcheck" ["div_broadcast"],
    Max => "gradcheck" ["maximum_minimum"],
    Min => "gradcheck" ["maximum_minimum"],
    Pow => "gradcheck" ["pow_broadcast"],
});

/// Every row: the ops, then the unary and binary functions.
pub fn table() -> impl Iterator<Item = &'static Entry> {
    OPS.iter().chain(UNARY).chain(BINARY)
}

/// The names an op is logged under: its variant, and its function for
/// [`Op::Unary`] / [`Op::Binary`].
fn names(op: &Op) -> Vec<&'static str> {
    let mut out = vec![op_name(op)];
    match op {
        Op::Unary { op, .. } => out.push(unary_name(op)),
        Op::Binary { op, .. } => out.push(binary_name(op)),
        _ => {}
    }
    out
}

/// Pairs `(test, op)` already logged by this process (each is printed once).
static LOGGED: Mutex<BTreeSet<(String, &'static str)>> = Mutex::new(BTreeSet::new());

/// In the child run, logs every op on the graph behind `loss` that backward
/// differentiates through (every leaf too), under the running test's name (libtest
/// names each test's thread after it). Does nothing otherwise.
pub fn record<T: Scalar>(g: &Graph<'_, T>, loss: Var) {
    if std::env::var_os(LOG_VAR).is_none() {
        return;
    }
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let mut seen = BTreeSet::new();
    let mut stack = vec![loss];
    let mut logged = LOGGED.lock().unwrap();
    while let Some(v) = stack.pop() {
        if !seen.insert(v.index()) {
            continue;
        }
        let op = g.op(v).unwrap();
        if op.is_leaf() || g.requires_grad(v).unwrap() {
            for name in names(&op) {
                if logged.insert((test.clone(), name)) {
                    eprintln!("{LOG_TAG}\t{test}\t{name}");
                }
            }
        }
        stack.extend(g.inputs(v).unwrap());
    }
}

/// Runs this test binary again (all tests but `this_test`) with the log on, requires
/// it to pass, and requires every test [`TABLE`] names for an op of `file` to have
/// logged that op. In the child run itself, does nothing.
pub fn assert_covered(file: &str, this_test: &str) {
    if std::env::var_os(LOG_VAR).is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args(["--skip", this_test, "--nocapture", "--test-threads=2"])
        .env(LOG_VAR, "1")
        .output()
        .expect("the test binary runs again");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the logged run of {file} failed:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let logged: BTreeSet<(&str, &str)> = stderr
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('\t');
            (parts.next() == Some(LOG_TAG)).then_some(())?;
            Some((parts.next()?, parts.next()?))
        })
        .collect();
    let mut missing = Vec::new();
    for entry in table().filter(|e| e.file == file) {
        for test in entry.tests {
            if !logged.contains(&(*test, entry.op)) {
                missing.push(format!("{} by {test}", entry.op));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{file}: ops the table says are checked but no checked graph held: {missing:?}"
    );
}

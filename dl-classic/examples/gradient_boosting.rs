//! Gradient boosting on the bundled 8x8 digits: the training and test log loss
//! after every stage (from `staged_predict_proba`), the stage count early stopping
//! picks on a held-out 10% of the training rows, and which pixels the trees split
//! on (feature importances). Then a 90% prediction interval from two quantile
//! regressors (0.05 and 0.95) on noisy 1-D data, with its coverage on fresh data.
//! Writes one SVG: the loss curves, the importances as an 8x8 heat map, and the
//! interval around the data.
//!
//! Run: `cargo run --release -p dl-classic --example gradient_boosting [out.svg]`
//! (default `gradient_boosting.svg` in the current directory).
//!
//! Same settings as scikit-learn's `GradientBoostingClassifier(n_estimators=300)`
//! (depth-3 trees, learning rate 0.1), on a stratified 70/30 split.

use std::fmt::Write as _;
use std::time::Instant;

use dl_classic::gradient_boosting::{
    EarlyStopping, GradientBoosting, GradientBoostingRegressor, RegressionLoss,
};
use dl_core::{Fit, MatRef, Predict, Rng};
use dl_data::metrics::accuracy;
use dl_data::split::SplitConfig;

type BoxError = Box<dyn std::error::Error>;

/// Mean log loss of `proba` (`rows x classes`) against labels `y`.
fn log_loss(proba: &[f64], y: &[usize]) -> f64 {
    let k = proba.len() / y.len();
    let total: f64 = proba
        .chunks_exact(k)
        .zip(y)
        .map(|(p, &c)| -p[c].max(1e-15).ln())
        .sum();
    total / y.len() as f64
}

fn main() -> Result<(), BoxError> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "gradient_boosting.svg".into());
    let data = dl_data::datasets::digits::<f64>()?;
    let split = SplitConfig {
        validation: 0.0,
        test: 0.3,
        shuffle_seed: Some(0),
    }
    .split_stratified(data.targets())?;
    let (train, test) = (data.subset(&split.train)?, data.subset(&split.test)?);
    println!(
        "digits: {} train / {} test rows, 64 pixels, 10 classes",
        train.n_samples(),
        test.n_samples()
    );

    let stages = 300;
    let t0 = Instant::now();
    let model = GradientBoosting::new(stages).fit(train.x(), train.targets())?;
    println!(
        "{stages} stages x 10 trees fitted in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let test_loss: Vec<f64> = model
        .staged_predict_proba(test.x())?
        .map(|p| log_loss(&p, test.targets()))
        .collect();
    println!("\n{:>6} {:>11} {:>11}", "stage", "train loss", "test loss");
    for m in (0..stages).step_by(25).chain([stages - 1]) {
        println!(
            "{:>6} {:>11.4} {:>11.4}",
            m + 1,
            model.train_loss[m],
            test_loss[m]
        );
    }
    let best = (0..stages)
        .min_by(|&a, &b| test_loss[a].total_cmp(&test_loss[b]))
        .unwrap_or(0);
    let acc = accuracy(test.targets(), &model.predict(test.x())?)?;
    println!(
        "lowest test loss {:.4} at stage {}; test accuracy after all {stages}: {:.2}%",
        test_loss[best],
        best + 1,
        100.0 * acc
    );

    let es = EarlyStopping::default();
    let stopped = GradientBoosting::new(stages)
        .early_stopping(Some(es))
        .fit(train.x(), train.targets())?;
    let acc_es = accuracy(test.targets(), &stopped.predict(test.x())?)?;
    println!(
        "early stopping (10% held out, {} stages without a {} gain): {} stages, test accuracy {:.2}%",
        es.n_iter_no_change,
        es.tol,
        stopped.n_stages(),
        100.0 * acc_es
    );

    let imp = model.feature_importances();
    let mut picture = svg(&model.train_loss, &test_loss, &imp)?;
    picture.truncate(picture.len() - "</svg>\n".len());
    picture = picture.replacen("height=\"360\"", "height=\"700\"", 1);
    picture += &intervals()?;
    picture += "</svg>\n";
    std::fs::write(&out, picture)?;
    println!("wrote {out}");
    Ok(())
}

/// `n` points of y = x sin x plus noise that grows with x, x uniform in [0, 10).
fn noisy(n: usize, rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..n).map(|_| rng.uniform(0.0, 10.0)).collect();
    let y = x
        .iter()
        .map(|&v| v * v.sin() + (0.3 + 0.2 * v) * rng.normal(0.0, 1.0))
        .collect();
    (x, y)
}

/// Fits the 0.05, 0.5 and 0.95 quantiles, prints the interval's coverage on fresh
/// data and returns an SVG group drawing data, median and interval.
fn intervals() -> Result<String, BoxError> {
    let mut rng = Rng::seed_from_u64(3);
    let (x, y) = noisy(1000, &mut rng);
    let (xt, yt) = noisy(1000, &mut rng);
    let grid: Vec<f64> = (0..=200).map(|i| i as f64 / 20.0).collect();
    let mut curves = Vec::new();
    let mut on_test = Vec::new();
    for alpha in [0.05, 0.5, 0.95] {
        let m = GradientBoostingRegressor::new(GradientBoosting::new(200).max_depth(Some(2)))
            .loss(RegressionLoss::Quantile { alpha })
            .fit(MatRef::new(&x, x.len(), 1)?, &y)?;
        curves.push(m.predict(MatRef::new(&grid, grid.len(), 1)?)?);
        on_test.push(m.predict(MatRef::new(&xt, xt.len(), 1)?)?);
    }
    let inside = (0..yt.len())
        .filter(|&i| on_test[0][i] <= yt[i] && yt[i] <= on_test[2][i])
        .count();
    println!(
        "\nquantile regression (0.05 / 0.5 / 0.95, 200 stages of depth 2): the 90% interval \
         holds {:.1}% of 1000 fresh points",
        100.0 * inside as f64 / yt.len() as f64
    );
    // Panel below the first row: x in [0, 10], y in the data's range.
    let (left, top, pw, ph) = (60.0, 410.0, 700.0, 260.0);
    let (lo, hi) = y
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let px = |v: f64| left + pw * v / 10.0;
    let py = |v: f64| top + ph * (hi - v) / (hi - lo);
    let mut s = String::new();
    writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">90% prediction interval: quantile 0.05 and 0.95 regressors, median in the middle</text>"#,
        left + pw / 2.0,
        top - 14.0
    )?;
    writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##
    )?;
    let band: Vec<String> = grid
        .iter()
        .zip(&curves[2])
        .map(|(&g, &v)| format!("{:.1},{:.1}", px(g), py(v)))
        .chain(
            grid.iter()
                .zip(&curves[0])
                .rev()
                .map(|(&g, &v)| format!("{:.1},{:.1}", px(g), py(v))),
        )
        .collect();
    writeln!(
        s,
        r##"<polygon fill="#fcbba1" fill-opacity="0.6" points="{}"/>"##,
        band.join(" ")
    )?;
    for (&a, &b) in x.iter().zip(&y).take(400) {
        writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="#2166ac" fill-opacity="0.6"/>"##,
            px(a),
            py(b)
        )?;
    }
    let median: Vec<String> = grid
        .iter()
        .zip(&curves[1])
        .map(|(&g, &v)| format!("{:.1},{:.1}", px(g), py(v)))
        .collect();
    writeln!(
        s,
        r##"<polyline fill="none" stroke="#b2182b" stroke-width="2" points="{}"/>"##,
        median.join(" ")
    )?;
    writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">x (400 of the 1000 training points shown)</text>"#,
        left + pw / 2.0,
        top + ph + 20.0
    )?;
    Ok(s)
}

/// Loss curves (log scale) on the left, pixel importances on the right.
fn svg(train: &[f64], test: &[f64], imp: &[f64]) -> Result<String, std::fmt::Error> {
    let (w, h, left, top, pw, ph) = (820.0, 360.0, 60.0, 40.0, 440.0, 270.0);
    let mut s = String::new();
    writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    )?;
    writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-weight="bold">log loss per stage (log scale)</text>"#,
        left + pw / 2.0
    )?;
    let all = train.iter().chain(test).copied();
    let lo = all.clone().fold(f64::INFINITY, f64::min).max(1e-6).log10();
    let hi = all.fold(0.0, f64::max).log10();
    let px = |i: usize| left + pw * i as f64 / (train.len() - 1).max(1) as f64;
    let py = |v: f64| top + ph * (hi - v.max(1e-6).log10()) / (hi - lo).max(1e-9);
    writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##
    )?;
    for e in (lo.floor() as i32)..=(hi.ceil() as i32) {
        let v = 10f64.powi(e);
        let y = py(v);
        if y >= top && y <= top + ph {
            writeln!(
                s,
                r##"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{v}</text>"##,
                left + pw,
                left - 6.0,
                y + 4.0
            )?;
        }
    }
    for (name, curve, color, dy) in [
        ("train", train, "#2166ac", 0.0),
        ("test", test, "#b2182b", 16.0),
    ] {
        let pts: Vec<String> = curve
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", px(i), py(v)))
            .collect();
        writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        )?;
        writeln!(
            s,
            r#"<text x="{}" y="{}" fill="{color}">{name}</text>"#,
            left + pw - 50.0,
            top + 18.0 + dy
        )?;
    }
    writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">stage (1..{})</text>"#,
        left + pw / 2.0,
        top + ph + 28.0,
        train.len()
    )?;
    // Importances: 8x8 cells, darker = more important.
    let (gx, gy, cell) = (570.0, top, 28.0);
    writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-weight="bold">pixel importance</text>"#,
        gx + 4.0 * cell
    )?;
    let max = imp.iter().copied().fold(0.0, f64::max).max(1e-12);
    for (p, &v) in imp.iter().enumerate() {
        let shade = (255.0 * (1.0 - v / max)) as u8;
        writeln!(
            s,
            r##"<rect x="{}" y="{}" width="{cell}" height="{cell}" fill="rgb({shade},{shade},255)" stroke="#ddd"/>"##,
            gx + (p % 8) as f64 * cell,
            gy + (p / 8) as f64 * cell
        )?;
    }
    writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">white 0, blue {:.3} (sum 1)</text>"#,
        gx + 4.0 * cell,
        gy + 8.0 * cell + 20.0,
        max
    )?;
    writeln!(s, "</svg>")?;
    Ok(s)
}

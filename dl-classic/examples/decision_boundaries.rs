//! Linear vs non-linear classifiers on 2-D toy sets: one SVG with a panel per
//! (data set, classifier) showing the predicted class over a grid, the training
//! points on top, and the test accuracy in the corner (the picture of
//! scikit-learn's "classifier comparison").
//!
//! Run: `cargo run --release -p dl-classic --example decision_boundaries [out.svg]`
//! (default `decision_boundaries.svg` in the current directory).
//!
//! The data sets are drawn with a seeded `dl_core::Rng`: two interleaved half
//! circles ("moons", noise 0.2), two concentric circles (radii 1 and 0.5, noise
//! 0.1) and two Gaussian blobs (linearly separable). Each has 200 training and 200
//! test points.

use std::fmt::Write as _;

use dl_classic::forest::RandomForest;
use dl_classic::gda::{Lda, Qda};
use dl_classic::gradient_boosting::GradientBoosting;
use dl_classic::knn::KNeighborsClassifier;
use dl_classic::logistic::LogisticRegression;
use dl_classic::svm::KernelSvm;
use dl_classic::tree::DecisionTree;
use dl_core::{Fit, MatRef, Predict, Rng};

type BoxError = Box<dyn std::error::Error>;

/// Points (`n x 2`, row-major) and labels.
struct Set {
    x: Vec<f64>,
    y: Vec<usize>,
}

/// Two interleaving half circles (scikit-learn's `make_moons`).
fn moons(n: usize, noise: f64, rng: &mut Rng) -> Set {
    let mut s = Set {
        x: Vec::with_capacity(2 * n),
        y: Vec::with_capacity(n),
    };
    for i in 0..n {
        let t = rng.uniform(0.0, std::f64::consts::PI);
        let (px, py) = if i % 2 == 0 {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        };
        s.x.push(px + rng.normal(0.0, noise));
        s.x.push(py + rng.normal(0.0, noise));
        s.y.push(i % 2);
    }
    s
}

/// A circle of radius 1 around one of radius `factor` (`make_circles`).
fn circles(n: usize, noise: f64, factor: f64, rng: &mut Rng) -> Set {
    let mut s = Set {
        x: Vec::with_capacity(2 * n),
        y: Vec::with_capacity(n),
    };
    for i in 0..n {
        let t = rng.uniform(0.0, 2.0 * std::f64::consts::PI);
        let r = if i % 2 == 0 { 1.0 } else { factor };
        s.x.push(r * t.cos() + rng.normal(0.0, noise));
        s.x.push(r * t.sin() + rng.normal(0.0, noise));
        s.y.push(i % 2);
    }
    s
}

/// Two Gaussian blobs with unit variance, centres 3 apart.
fn blobs(n: usize, rng: &mut Rng) -> Set {
    let mut s = Set {
        x: Vec::with_capacity(2 * n),
        y: Vec::with_capacity(n),
    };
    for i in 0..n {
        let c = (i % 2) as f64 * 2.2;
        s.x.push(c + rng.normal(0.0, 0.8));
        s.x.push(c + rng.normal(0.0, 0.8));
        s.y.push(i % 2);
    }
    s
}

/// The classifiers, as functions from (train, grid, test) to (grid prediction,
/// test accuracy).
type Runner = fn(&Set, MatRef<'_, f64>, &Set) -> Result<(Vec<usize>, f64), BoxError>;

fn run<F>(
    est: F,
    train: &Set,
    grid: MatRef<'_, f64>,
    test: &Set,
) -> Result<(Vec<usize>, f64), BoxError>
where
    F: Fit<f64, usize>,
    F::Fitted: Predict<f64, usize>,
    F::Error: std::error::Error + 'static,
    <F::Fitted as Predict<f64, usize>>::Error: std::error::Error + 'static,
{
    let m = est.fit(MatRef::new(&train.x, train.y.len(), 2)?, &train.y)?;
    let on_grid = m.predict(grid)?;
    let pred = m.predict(MatRef::new(&test.x, test.y.len(), 2)?)?;
    let acc = dl_data::metrics::accuracy(&test.y, &pred)?;
    Ok((on_grid, acc))
}

const CLASSIFIERS: [(&str, Runner); 8] = [
    ("Logistic regression", |a, g, t| {
        run(LogisticRegression::default(), a, g, t)
    }),
    ("LDA", |a, g, t| run(Lda::default(), a, g, t)),
    ("QDA", |a, g, t| run(Qda::default(), a, g, t)),
    ("kNN (k = 5)", |a, g, t| {
        run(KNeighborsClassifier::new(5), a, g, t)
    }),
    ("RBF SVM", |a, g, t| run(KernelSvm::default(), a, g, t)),
    ("Decision tree (depth 5)", |a, g, t| {
        run(DecisionTree::default().max_depth(Some(5)), a, g, t)
    }),
    ("Random forest", |a, g, t| {
        run(RandomForest::new(100).seed(0), a, g, t)
    }),
    ("Gradient boosting", |a, g, t| {
        run(GradientBoosting::default(), a, g, t)
    }),
];

/// Grid cells per axis.
const CELLS: usize = 120;
/// Panel side in pixels.
const PANEL: f64 = 170.0;
const GAP: f64 = 12.0;
const LEFT: f64 = 90.0;
const TOP: f64 = 40.0;
/// Class colours: background (light) and points (dark).
const LIGHT: [&str; 2] = ["#c6dbef", "#fcbba1"];
const DARK: [&str; 2] = ["#2166ac", "#b2182b"];

fn main() -> Result<(), BoxError> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "decision_boundaries.svg".into());
    let mut rng = Rng::seed_from_u64(7);
    let sets: Vec<(&str, Set, Set)> = vec![
        (
            "moons",
            moons(200, 0.2, &mut rng),
            moons(200, 0.2, &mut rng),
        ),
        (
            "circles",
            circles(200, 0.1, 0.5, &mut rng),
            circles(200, 0.1, 0.5, &mut rng),
        ),
        ("blobs", blobs(200, &mut rng), blobs(200, &mut rng)),
    ];
    let width = LEFT + CLASSIFIERS.len() as f64 * (PANEL + GAP);
    let height = TOP + sets.len() as f64 * (PANEL + GAP);
    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    )?;
    writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    for (c, (name, _)) in CLASSIFIERS.iter().enumerate() {
        let cx = LEFT + c as f64 * (PANEL + GAP) + PANEL / 2.0;
        writeln!(
            svg,
            r#"<text x="{cx}" y="{}" text-anchor="middle" font-weight="bold">{name}</text>"#,
            TOP - 12.0
        )?;
    }
    println!("{:<10} test accuracy per classifier", "data set");
    for (r, (set_name, train, test)) in sets.iter().enumerate() {
        let y0 = TOP + r as f64 * (PANEL + GAP);
        writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" font-weight="bold">{set_name}</text>"#,
            LEFT - 10.0,
            y0 + PANEL / 2.0
        )?;
        // Bounds with a margin, and the grid of cell centres (row 0 at the top).
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in train.x.chunks_exact(2).chain(test.x.chunks_exact(2)) {
            for a in 0..2 {
                lo[a] = lo[a].min(p[a] - 0.4);
                hi[a] = hi[a].max(p[a] + 0.4);
            }
        }
        let mut grid = Vec::with_capacity(CELLS * CELLS * 2);
        for gy in 0..CELLS {
            for gx in 0..CELLS {
                grid.push(lo[0] + (gx as f64 + 0.5) / CELLS as f64 * (hi[0] - lo[0]));
                grid.push(hi[1] - (gy as f64 + 0.5) / CELLS as f64 * (hi[1] - lo[1]));
            }
        }
        let gm = MatRef::new(&grid, CELLS * CELLS, 2)?;
        let mut line = format!("{set_name:<10}");
        for (c, (name, runner)) in CLASSIFIERS.iter().enumerate() {
            let x0 = LEFT + c as f64 * (PANEL + GAP);
            let (on_grid, acc) = runner(train, gm, test)?;
            write!(line, " {name} {:.2} |", acc)?;
            let cell = PANEL / CELLS as f64;
            // One rectangle per run of equal predictions along a grid row.
            for gy in 0..CELLS {
                let row = &on_grid[gy * CELLS..(gy + 1) * CELLS];
                let mut start = 0;
                for gx in 1..=CELLS {
                    if gx == CELLS || row[gx] != row[start] {
                        writeln!(
                            svg,
                            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}" shape-rendering="crispEdges"/>"#,
                            x0 + start as f64 * cell,
                            y0 + gy as f64 * cell,
                            (gx - start) as f64 * cell + 0.3,
                            cell + 0.3,
                            LIGHT[row[start].min(1)]
                        )?;
                        start = gx;
                    }
                }
            }
            for (p, &label) in train.x.chunks_exact(2).zip(&train.y) {
                let px = x0 + (p[0] - lo[0]) / (hi[0] - lo[0]) * PANEL;
                let py = y0 + (hi[1] - p[1]) / (hi[1] - lo[1]) * PANEL;
                writeln!(
                    svg,
                    r#"<circle cx="{px:.1}" cy="{py:.1}" r="2.2" fill="{}" stroke="white" stroke-width="0.5"/>"#,
                    DARK[label.min(1)]
                )?;
            }
            writeln!(
                svg,
                r#"<rect x="{x0}" y="{y0}" width="{PANEL}" height="{PANEL}" fill="none" stroke="dimgray"/>"#
            )?;
            writeln!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="end" font-size="13" font-weight="bold" fill="black">{:.2}</text>"#,
                x0 + PANEL - 5.0,
                y0 + PANEL - 6.0,
                acc
            )?;
        }
        println!("{line}");
    }
    writeln!(svg, "</svg>")?;
    std::fs::write(&out, svg)?;
    println!("wrote {out}");
    Ok(())
}

//! Every metric against scikit-learn's value on the same inputs (both pinned in
//! tests/fixtures/sklearn_metrics.txt by gen_sklearn_metrics.py).

mod common;

use common::Fixture;
use dl_core::MatRef;
use dl_data::{datasets, metrics};

const FIXTURE: &str = include_str!("fixtures/sklearn_metrics.txt");

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs().max(1.0),
        "{what}: {got} vs sklearn {want}"
    );
}

#[test]
fn classification_metrics() {
    let fx = Fixture::parse(FIXTURE);
    let (t, p) = (fx.usizes("clf_y_true"), fx.usizes("clf_y_pred"));
    close(
        metrics::accuracy(&t, &p).unwrap(),
        fx.f64("accuracy"),
        "accuracy",
    );
    let r = metrics::precision_recall_f1(&t, &p).unwrap();
    assert_eq!(r.per_class.len(), 5);
    for (c, s) in r.per_class.iter().enumerate() {
        close(s.precision, fx.f64s("precision_per_class")[c], "precision");
        close(s.recall, fx.f64s("recall_per_class")[c], "recall");
        close(s.f1, fx.f64s("f1_per_class")[c], "f1");
        assert_eq!(s.support, fx.usizes("support_per_class")[c]);
    }
    close(
        r.macro_precision,
        fx.f64("macro_precision"),
        "macro precision",
    );
    close(r.macro_recall, fx.f64("macro_recall"), "macro recall");
    close(r.macro_f1, fx.f64("macro_f1"), "macro f1");
    let cm = metrics::ConfusionMatrix::new(&t, &p, Some(5)).unwrap();
    assert_eq!(cm.counts, fx.usizes("confusion_matrix"));
    let text = cm.to_text();
    assert_eq!(text.lines().count(), 6);
    assert!(
        text.lines().nth(1).unwrap().ends_with("11  0  0  1  2"),
        "{text}"
    );
    let svg = cm.to_svg(None);
    assert_eq!(svg.matches("<rect x=").count(), 25);
}

#[test]
fn log_loss_with_clipping() {
    let fx = Fixture::parse(FIXTURE);
    let got = metrics::log_loss(&fx.usizes("ll_y_true"), &fx.f64s("ll_proba"), 3).unwrap();
    close(got, fx.f64("log_loss"), "log loss");
}

#[test]
fn regression_metrics() {
    let fx = Fixture::parse(FIXTURE);
    let (t, p) = (fx.f64s("reg_y_true"), fx.f64s("reg_y_pred"));
    close(metrics::mse(&t, &p).unwrap(), fx.f64("mse"), "mse");
    close(metrics::mae(&t, &p).unwrap(), fx.f64("mae"), "mae");
    close(metrics::r2(&t, &p).unwrap(), fx.f64("r2"), "r2");
}

#[test]
fn clustering_metrics() {
    let fx = Fixture::parse(FIXTURE);
    let ari = metrics::adjusted_rand_index(&fx.usizes("ari_a"), &fx.usizes("ari_b")).unwrap();
    close(ari, fx.f64("ari"), "adjusted Rand index");
    let x = fx.f64s("sil_x");
    let s = metrics::silhouette_score(MatRef::new(&x, 30, 3).unwrap(), &fx.usizes("sil_labels"))
        .unwrap();
    close(s, fx.f64("silhouette"), "silhouette");
    let iris = datasets::iris::<f64>().unwrap();
    let s = metrics::silhouette_score(iris.x(), iris.targets()).unwrap();
    close(s, fx.f64("silhouette_iris"), "silhouette on iris");
}

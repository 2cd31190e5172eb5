//! The representational-power slide: one hidden layer of tanh units fits a 1-D
//! function. Trains 1-H-1 networks (H = 2, 8, 32) on `f(x) = sin(3x) + 0.3 x^2` over
//! [-2, 2] with MSE and Adam, prints the fit error, and writes `universal_approx.svg`
//! with the target and each fit.
//!
//! ```text
//! cargo run --release -p dl-optim --example universal_approx
//! ```

use dl_autograd::{Graph, ParamSet};
use dl_core::{Rng, Tensor};
use dl_layers::{predict, Activation, Ctx, LinearConfig, Module, Sequential};
use dl_optim::svg::{document, panel, Series};
use dl_optim::{AdamConfig, Optimizer};

fn target(x: f64) -> f64 {
    (3.0 * x).sin() + 0.3 * x * x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = 200;
    let xs: Vec<f64> = (0..n)
        .map(|i| -2.0 + 4.0 * i as f64 / (n - 1) as f64)
        .collect();
    let x = Tensor::from_vec(xs.clone(), &[n, 1])?;
    let y = Tensor::from_vec(xs.iter().map(|&v| target(v)).collect(), &[n, 1])?;
    let mut curves = vec![(String::from("target"), y.data().to_vec())];
    for hidden in [2, 8, 32] {
        let mut rng = Rng::seed_from_u64(0);
        let mut net: Sequential<f64> = Sequential::new()
            .push(LinearConfig::new(1, hidden).init(&mut rng)?)
            .push(Activation::Tanh)
            .push(LinearConfig::new(hidden, 1).init(&mut rng)?);
        let mut opt = AdamConfig::new(0.01).build()?;
        let mut loss_value = f64::NAN;
        for _ in 0..5000 {
            let mut g = Graph::new();
            let xv = g.input(&x);
            let out = net.forward(&mut g, xv, &mut Ctx::train(0))?;
            let t = g.input(&y);
            let loss = g.mse(out, t)?;
            loss_value = g.value(loss)?.data()[0];
            g.backward(loss)?;
            drop(g);
            opt.step(&mut net)?;
            net.for_each_param(&mut |p| p.zero_grad());
        }
        println!(
            "1-{hidden}-1 tanh network: MSE {loss_value:.5} on {n} points of sin(3x) + 0.3x^2"
        );
        curves.push((
            format!("{hidden} hidden units"),
            predict(&net, &x)?.into_vec(),
        ));
    }
    let colors = ["black", "#ff7f0e", "#2ca02c", "#1f77b4"];
    let series: Vec<Series<'_>> = curves
        .iter()
        .zip(colors)
        .map(|((label, values), color)| Series {
            label,
            values,
            color,
        })
        .collect();
    let svg = document(&[panel(
        "f(x) = sin(3x) + 0.3x^2 on [-2, 2]: target and fits",
        "sample",
        &series,
        0.0,
    )]);
    std::fs::write("universal_approx.svg", svg)?;
    println!("wrote universal_approx.svg");
    Ok(())
}

//! Passes the locked versions of candle and burn to the binaries, so the JSON names the
//! exact crate version that was measured.

fn main() {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    for (krate, var) in [
        ("candle-core", "PEER_CANDLE_VERSION"),
        ("burn", "PEER_BURN_VERSION"),
    ] {
        let pat = format!("name = \"{krate}\"\nversion = \"");
        let version = lock
            .find(&pat)
            .map(|i| &lock[i + pat.len()..])
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("unknown");
        println!("cargo:rustc-env={var}={version}");
    }
    println!("cargo:rerun-if-changed=Cargo.lock");
}

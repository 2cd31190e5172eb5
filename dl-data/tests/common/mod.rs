// Each test binary uses only some of these helpers.
#![allow(dead_code)]

// Shared by the tests that read `key: v1 v2 ...` fixture files written by the
// scripts in tests/fixtures/.

use std::collections::HashMap;

pub struct Fixture(HashMap<String, Vec<String>>);

impl Fixture {
    pub fn parse(text: &str) -> Self {
        let mut m = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (k, v) = line.split_once(':').expect("fixture line without ':'");
            m.insert(
                k.trim().to_string(),
                v.split_whitespace().map(String::from).collect(),
            );
        }
        Fixture(m)
    }

    fn raw(&self, key: &str) -> &[String] {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("fixture has no {key}"))
    }

    pub fn f64s(&self, key: &str) -> Vec<f64> {
        self.raw(key).iter().map(|s| s.parse().unwrap()).collect()
    }

    pub fn f64(&self, key: &str) -> f64 {
        self.f64s(key)[0]
    }

    pub fn usizes(&self, key: &str) -> Vec<usize> {
        self.raw(key).iter().map(|s| s.parse().unwrap()).collect()
    }
}

//! LogME against its NumPy twin (`tests/reference/logme_reference.py`, fixture
//! `tests/fixtures/logme_reference.json`): fewer samples than dimensions, more, and weakly
//! separated classes; and the ranking it exists for (separable features score higher).

mod common;

use graft::transfer::logme;

fn fixture() -> serde_json::Value {
    let text = std::fs::read_to_string(common::manifest_dir().join("tests/fixtures/logme_reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn case(value: &serde_json::Value) -> (Vec<f32>, usize, Vec<usize>, usize) {
    let rows = value["features"].as_array().unwrap();
    let dim = rows[0].as_array().unwrap().len();
    let features = rows.iter().flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32)).collect();
    let labels = value["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    (features, dim, labels, value["classes"].as_u64().unwrap() as usize)
}

#[test]
fn logme_matches_numpy() {
    let cases = fixture();
    for (name, value) in cases.as_object().unwrap() {
        let (features, dim, labels, classes) = case(value);
        let ours = logme(&features, dim, &labels, classes).unwrap();
        let theirs = value["logme"].as_f64().unwrap();
        assert!((ours - theirs).abs() < 1e-6 * theirs.abs().max(1.0), "{name}: {ours} vs NumPy {theirs}");
    }
    let score = |name: &str| value_logme(&cases[name]);
    assert!(score("more_samples_than_dims") > score("weakly_separated"), "better separated features score higher");
}

fn value_logme(value: &serde_json::Value) -> f64 {
    let (features, dim, labels, classes) = case(value);
    logme(&features, dim, &labels, classes).unwrap()
}

#[test]
fn logme_refuses_what_it_cannot_score() {
    assert!(logme(&[1.0; 6], 3, &[0, 1], 2).unwrap_err().to_string().contains("more samples than classes"));
    assert!(logme(&[1.0; 5], 3, &[0, 1], 2).unwrap_err().to_string().contains("5 feature values"));
    assert!(logme(&[1.0; 9], 3, &[0, 0, 0], 1).is_err());
}

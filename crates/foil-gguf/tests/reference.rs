//! Parity with the Python `gguf` package (gguf-py): blocks of random bytes, dequantised
//! by `gguf.quants.dequantize`, in `fixtures/dequant.json`
//! (written by `scripts/fixtures/make_gguf_fixtures.py`).

use foil_gguf::{GgmlType, dequantize};

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Relative agreement to 1e-6 (exact for values equal to the bit).
pub fn close(got: f32, want: f32) -> bool {
    got == want || (got - want).abs() <= 1e-6 * want.abs().max(got.abs())
}

#[test]
fn dequantisation_matches_gguf_py() {
    let text = include_str!("fixtures/dequant.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let mut seen = Vec::new();
    for case in v["cases"].as_array().unwrap() {
        let name = case["type"].as_str().unwrap();
        let ty = *GgmlType::ALL.iter().find(|t| t.name() == name).unwrap();
        let bytes = from_hex(case["hex"].as_str().unwrap());
        let n = case["n_elements"].as_u64().unwrap() as usize;
        let want: Vec<f32> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(want.len(), n);
        let got = dequantize(ty, &bytes, n).unwrap();
        let mut exact = 0;
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert!(close(g, w), "{name} element {i}: got {g}, gguf-py {w}");
            exact += usize::from(g.to_bits() == w.to_bits());
        }
        println!("{name}: {n} elements agree ({exact} bit-exact)");
        seen.push(ty);
    }
    for t in foil_gguf::dequant::SUPPORTED {
        assert!(seen.contains(t), "no gguf-py fixture for {t}");
    }
}

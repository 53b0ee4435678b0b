//! Test helpers shared by the dataset readers' unit tests.

use serde_json::{Map, Value};

/// The path of a committed sample file in `data-samples/`.
pub fn samples(name: &str) -> String {
    format!("{}/../../data-samples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The object of a `json!({...})` literal.
pub fn obj(v: Value) -> Map<String, Value> {
    let Value::Object(m) = v else {
        panic!("expected a JSON object, got {v}")
    };
    m
}

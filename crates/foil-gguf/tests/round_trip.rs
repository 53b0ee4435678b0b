//! Files written by `GgufWriter` read back with `GgufFile`: metadata of every value
//! type, F32, F16 and quantised tensors, alignment and layout.

use foil_gguf::{GgmlType, GgufFile, GgufWriter, Value, ValueType};

fn sample() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set("general.architecture", "llama")
        .set("general.name", String::from("tiny"))
        .set("t.u8", 7u8)
        .set("t.i8", -7i8)
        .set("t.u16", 65535u16)
        .set("t.i16", -300i16)
        .set("llama.block_count", 30u32)
        .set("t.i32", -123456i32)
        .set("t.f32", 1e-5f32)
        .set("t.bool", true)
        .set("t.u64", u64::MAX)
        .set("t.i64", i64::MIN)
        .set("t.f64", std::f64::consts::PI)
        .set(
            "tokenizer.ggml.tokens",
            Value::str_array(["<s>", "a", "ü", ""]),
        )
        .set("tokenizer.ggml.token_type", vec![3i32, 1, 1, -2])
        .set("t.f32s", vec![0.5f32, -1.5])
        .set("t.empty", Vec::<u64>::new())
        .set(
            "t.nested",
            Value::Array(
                ValueType::Array,
                vec![vec![1u8, 2].into(), Value::Array(ValueType::String, vec![])],
            ),
        );
    // 2×3 f32, row-major: dims in the file are [3, 2]
    w.add_f32("a.weight", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.25])
        .unwrap();
    // f16 rounds 0.1 to 0x2E66 = (1 + 614/1024) · 2^-4 = 1638/16384 = 0.0999755859375
    w.add_f16("b.weight", &[4], &[0.5, -2.0, 0.1, 65504.0])
        .unwrap();
    // one Q8_0 block: d = 0.5 (0x3800), qs[i] = i - 16
    let mut q = vec![0x00, 0x38];
    q.extend((0..32).map(|i| (i as i8 - 16) as u8));
    w.add_raw("c.weight", &[1, 32], GgmlType::Q8_0, q).unwrap();
    w
}

#[test]
fn metadata_of_every_type_round_trips() {
    let w = sample();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.get_str("general.name"), Some("tiny"));
    assert_eq!(f.get("t.u8"), Some(&Value::U8(7)));
    assert_eq!(f.get("t.i8"), Some(&Value::I8(-7)));
    assert_eq!(f.get_u64("t.u16"), Some(65535));
    assert_eq!(f.get_i64("t.i16"), Some(-300));
    assert_eq!(f.get_u64("t.i16"), None);
    assert_eq!(f.get_u64("llama.block_count"), Some(30));
    assert_eq!(f.get("t.i32"), Some(&Value::I32(-123456)));
    assert_eq!(f.get_f64("t.f32"), Some(1e-5f32 as f64));
    assert_eq!(f.get_bool("t.bool"), Some(true));
    assert_eq!(f.get_u64("t.u64"), Some(u64::MAX));
    assert_eq!(f.get_i64("t.i64"), Some(i64::MIN));
    assert_eq!(f.get_f64("t.f64"), Some(std::f64::consts::PI));
    assert_eq!(f.get_f64("llama.block_count"), Some(30.0));
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens"),
        Some(vec!["<s>", "a", "ü", ""])
    );
    assert_eq!(
        f.get_i64_array("tokenizer.ggml.token_type"),
        Some(vec![3, 1, 1, -2])
    );
    assert_eq!(f.get_f64_array("t.f32s"), Some(vec![0.5, -1.5]));
    assert_eq!(
        f.get("t.empty"),
        Some(&Value::Array(ValueType::U64, vec![]))
    );
    assert_eq!(f.get_str_array("tokenizer.ggml.token_type"), None);
    assert_eq!(f.get("missing"), None);
    // every value, in order, exactly as written
    assert_eq!(f.metadata(), w.metadata());
    assert_eq!(f.metadata()[0].0, "general.architecture");
    assert_eq!(f.metadata().len(), 18);
}

#[test]
fn tensors_round_trip_with_shapes_and_aligned_offsets() {
    let bytes = sample().to_bytes().unwrap();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    let names: Vec<_> = f.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a.weight", "b.weight", "c.weight"]);

    let a = f.tensor_info("a.weight").unwrap();
    assert_eq!((a.dims.as_slice(), a.shape()), (&[3u64, 2][..], vec![2, 3]));
    assert_eq!(
        (a.ggml_type, a.offset, a.n_elements(), a.n_bytes()),
        (GgmlType::F32, 0, 6, 24)
    );
    let (shape, data) = f.tensor_f32("a.weight").unwrap();
    assert_eq!(shape, [2, 3]);
    assert_eq!(data, [1.0, 2.0, 3.0, 4.0, 5.0, -6.25]);

    let b = f.tensor_info("b.weight").unwrap();
    // a takes 24 bytes, padded to 32
    assert_eq!((b.ggml_type, b.offset), (GgmlType::F16, 32));
    assert_eq!(
        f.tensor_f32("b.weight").unwrap().1,
        [0.5, -2.0, 1638.0 / 16384.0, 65504.0]
    );

    let c = f.tensor_info("c.weight").unwrap();
    assert_eq!(
        (c.ggml_type, c.offset, c.shape()),
        (GgmlType::Q8_0, 64, vec![1, 32])
    );
    let (_, y) = f.tensor_f32("c.weight").unwrap();
    assert_eq!((y[0], y[31]), (-8.0, 7.5));

    assert_eq!(f.data_offset() % 32, 0);
    // the last tensor (34 bytes) is padded too
    assert_eq!(bytes.len() as u64, f.data_offset() + 64 + 64);
    assert!(
        f.tensor_f32("nope")
            .unwrap_err()
            .to_string()
            .contains("nope")
    );
}

#[test]
fn general_alignment_sets_the_data_alignment() {
    let mut w = GgufWriter::new();
    w.set("general.alignment", 64u32);
    w.add_f32("x", &[3], &[1.0, 2.0, 3.0]).unwrap();
    w.add_f32("y", &[1], &[4.0]).unwrap();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    assert_eq!(f.tensor_info("y").unwrap().offset, 64);
    assert_eq!(f.tensor_f32("y").unwrap().1, [4.0]);

    let mut w = GgufWriter::new();
    w.set("general.alignment", 24u32);
    assert!(w.to_bytes().is_err());
}

#[test]
fn writes_to_disk_and_opens_by_path() {
    let dir = std::env::temp_dir().join(format!("foil-gguf-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.gguf");
    sample().write(&path).unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.source(), path.display().to_string());
    assert_eq!(f.tensors().len(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writer_rejects_inconsistent_tensors_and_arrays() {
    let mut w = GgufWriter::new();
    assert!(w.add_f32("x", &[2, 2], &[1.0; 3]).is_err());
    w.add_f32("x", &[1], &[1.0]).unwrap();
    assert!(w.add_f32("x", &[1], &[1.0]).is_err(), "duplicate name");
    assert!(w.add_raw("q", &[31], GgmlType::Q8_0, vec![0; 34]).is_err());
    assert!(w.add_f32("big", &[1, 1, 1, 1, 1], &[1.0]).is_err());
    w.set("bad", Value::Array(ValueType::U8, vec![Value::I8(1)]));
    assert!(w.to_bytes().is_err());
}

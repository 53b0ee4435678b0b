//! Malformed and hostile input: every case is an error naming what is wrong, never a
//! panic or a huge allocation.

use foil_gguf::{GgmlType, GgufFile, GgufWriter};

/// Builds GGUF bytes field by field.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Bytes {
        let mut b = Bytes(b"GGUF".to_vec());
        b.u32(version).u64(n_tensors).u64(n_kv);
        b
    }
    fn u8(&mut self, x: u8) -> &mut Self {
        self.0.push(x);
        self
    }
    fn u32(&mut self, x: u32) -> &mut Self {
        self.0.extend(x.to_le_bytes());
        self
    }
    fn u64(&mut self, x: u64) -> &mut Self {
        self.0.extend(x.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend(s.as_bytes());
        self
    }
    /// A tensor info: name, dims (ggml order), type id, offset.
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    fn pad_to(&mut self, align: usize) -> &mut Self {
        while !self.0.len().is_multiple_of(align) {
            self.0.push(0);
        }
        self
    }
    fn zeros(&mut self, n: usize) -> &mut Self {
        self.0.extend(std::iter::repeat_n(0, n));
        self
    }
    fn parse(&self) -> anyhow::Result<GgufFile> {
        GgufFile::from_bytes(self.0.clone())
    }
}

/// The full error chain, for matching.
fn err(r: anyhow::Result<GgufFile>) -> String {
    format!("{:#}", r.expect_err("expected an error"))
}

fn valid_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", "llama")
        .set(
            "tokenizer.ggml.tokens",
            foil_gguf::Value::str_array(["a", "b"]),
        )
        .set("n", 3u32);
    w.add_f32("a", &[2, 3], &[1.0; 6]).unwrap();
    let mut q = vec![0x00, 0x38];
    q.extend([1u8; 32]);
    w.add_raw("q", &[32], GgmlType::Q8_0, q).unwrap();
    w.to_bytes().unwrap()
}

#[test]
fn a_minimal_hand_built_file_parses() {
    // control for the cases below: one key, one F32 tensor of 2 elements
    let mut b = Bytes::header(3, 1, 1);
    b.str("k").u32(4).u32(9);
    b.tensor("t", &[2], 0, 0).pad_to(32);
    b.0.extend(1.5f32.to_le_bytes());
    b.0.extend((-2.0f32).to_le_bytes());
    let f = b.parse().unwrap();
    assert_eq!(f.get_u64("k"), Some(9));
    assert_eq!(f.tensor_f32("t").unwrap(), (vec![2], vec![1.5, -2.0]));
    // version 2 has the same layout
    b.0[4] = 2;
    assert_eq!(b.parse().unwrap().version(), 2);
}

#[test]
fn bad_magic_is_an_error() {
    let mut bytes = valid_file();
    bytes[..4].copy_from_slice(b"GGML");
    let e = err(GgufFile::from_bytes(bytes));
    assert!(
        e.contains("not a GGUF file") && e.contains("<memory>"),
        "{e}"
    );
    assert!(err(GgufFile::from_bytes(vec![])).contains("truncated"));
}

#[test]
fn unsupported_versions_are_errors() {
    assert!(err(Bytes::header(1, 0, 0).parse()).contains("version 1"));
    assert!(err(Bytes::header(3u32.swap_bytes(), 0, 0).parse()).contains("big-endian"));
    assert!(err(Bytes::header(99, 0, 0).parse()).contains("unknown GGUF version 99"));
}

#[test]
fn every_truncation_of_a_valid_file_is_an_error() {
    let bytes = valid_file();
    let f = GgufFile::from_bytes(bytes.clone()).unwrap();
    let q = f.tensor_info("q").unwrap();
    let end_of_data = (f.data_offset() + q.offset + q.n_bytes()) as usize;
    for len in 0..end_of_data {
        let r = GgufFile::from_bytes(bytes[..len].to_vec());
        let e = format!(
            "{:#}",
            r.expect_err(&format!("prefix of {len} bytes parsed"))
        );
        assert!(
            e.contains("truncated") || e.contains("past the end") || e.contains("only"),
            "prefix {len}: {e}"
        );
    }
    // trailing padding after the last tensor is optional
    assert!(GgufFile::from_bytes(bytes[..end_of_data].to_vec()).is_ok());
}

#[test]
fn truncated_files_on_disk_name_the_path() {
    let dir = std::env::temp_dir().join(format!("foil-gguf-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cut.gguf");
    std::fs::write(&path, &valid_file()[..40]).unwrap();
    let e = err(GgufFile::open(&path));
    assert!(e.contains("cut.gguf") && e.contains("truncated"), "{e}");
    let e = err(GgufFile::open(dir.join("absent.gguf")));
    assert!(e.contains("absent.gguf"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn huge_counts_and_lengths_are_errors_not_allocations() {
    // array of u64::MAX u8s
    let mut b = Bytes::header(3, 0, 1);
    b.str("k").u32(9).u32(0).u64(u64::MAX).zeros(16);
    let e = err(b.parse());
    assert!(
        e.contains("18446744073709551615") && e.contains("\"k\""),
        "{e}"
    );

    // array of 2^40 strings (each at least 8 bytes)
    let mut b = Bytes::header(3, 0, 1);
    b.str("k").u32(9).u32(8).u64(1 << 40).zeros(64);
    assert!(err(b.parse()).contains("bytes are left"));

    // a string claiming 2^62 bytes
    let mut b = Bytes::header(3, 0, 1);
    b.str("k").u32(8).u64(1 << 62).zeros(8);
    assert!(err(b.parse()).contains("claims"));

    // a key claiming u64::MAX bytes
    let mut b = Bytes::header(3, 0, 1);
    b.u64(u64::MAX).zeros(8);
    assert!(err(b.parse()).contains("claims"));

    // counts of kv pairs and tensors far beyond the file
    assert!(err(Bytes::header(3, 0, u64::MAX).parse()).contains("metadata entries"));
    assert!(err(Bytes::header(3, u64::MAX, 0).parse()).contains("tensor infos"));

    // arrays nested ever deeper
    let mut b = Bytes::header(3, 0, 1);
    b.str("k").u32(9);
    for _ in 0..100 {
        b.u32(9).u64(1);
    }
    b.u32(0).u64(0);
    assert!(err(b.parse()).contains("nested"));
}

#[test]
fn bad_values_are_errors() {
    // unknown value type
    let mut b = Bytes::header(3, 0, 1);
    b.str("k").u32(13).u32(0);
    assert!(err(b.parse()).contains("unknown metadata value type 13"));
    // bool that is neither 0 nor 1
    let mut b = Bytes::header(3, 0, 1);
    b.str("k").u32(7).u8(2);
    assert!(err(b.parse()).contains("not 0 or 1"));
    // invalid UTF-8
    let mut b = Bytes::header(3, 0, 1);
    b.str("k").u32(8).u64(2).u8(0xC3).u8(0x28);
    assert!(err(b.parse()).contains("UTF-8"));
    // the same key twice
    let mut b = Bytes::header(3, 0, 2);
    b.str("k").u32(0).u8(1).str("k").u32(0).u8(2);
    assert!(err(b.parse()).contains("twice"));
    // alignment that is not a power of two
    for a in [0u32, 24] {
        let mut b = Bytes::header(3, 0, 1);
        b.str("general.alignment").u32(4).u32(a);
        assert!(err(b.parse()).contains("power of two"));
    }
}

#[test]
fn bad_tensor_infos_are_errors() {
    let with = |dims: &[u64], ty: u32, offset: u64| {
        let mut b = Bytes::header(3, 1, 0);
        b.tensor("w", dims, ty, offset).pad_to(32).zeros(256);
        err(b.parse())
    };
    let e = with(&[2], 4, 0);
    assert!(
        e.contains("unknown ggml type id 4") && e.contains("\"w\""),
        "{e}"
    );
    assert!(with(&[2], 1000, 0).contains("unknown ggml type id 1000"));
    assert!(with(&[1, 1, 1, 1, 1], 0, 0).contains("5 dimensions"));
    assert!(with(&[u64::MAX, 2], 0, 0).contains("overflows"));
    // 2^62 F32 elements fit a u64 count but not their byte size
    assert!(with(&[1 << 62], 0, 0).contains("overflows"));
    assert!(with(&[16], 8, 0).contains("block size 32"));
    assert!(with(&[2], 0, 4).contains("multiple of the alignment"));
    // offset past the end of the file
    let e = with(&[2], 0, 1 << 20);
    assert!(
        e.contains("past the end") && e.contains("\"w\"") && e.contains("1048576"),
        "{e}"
    );
    // offset so large that start + size overflows
    assert!(with(&[2], 0, u64::MAX - 31).contains("past the end"));
    // data larger than the file
    assert!(with(&[1 << 20], 0, 0).contains("past the end"));

    // two tensors with one name
    let mut b = Bytes::header(3, 2, 0);
    b.tensor("w", &[1], 0, 0)
        .tensor("w", &[1], 0, 32)
        .pad_to(32)
        .zeros(64);
    assert!(err(b.parse()).contains("twice"));
}

#[test]
fn unsupported_tensor_types_fail_at_dequantisation_with_the_type_name() {
    // a Q5_K tensor (176-byte blocks) parses; dequantising it names the type
    let mut b = Bytes::header(3, 1, 0);
    b.tensor("w", &[256], GgmlType::Q5_K.id(), 0)
        .pad_to(32)
        .zeros(176);
    let f = b.parse().unwrap();
    assert_eq!(f.tensor_data("w").unwrap().len(), 176);
    let e = format!("{:#}", f.tensor_f32("w").unwrap_err());
    assert!(e.contains("Q5_K") && e.contains("\"w\""), "{e}");
}

#[test]
fn corrupted_bytes_never_panic() {
    // flip bytes of a valid file at seeded pseudo-random positions; every outcome must
    // be Ok or Err, and an Ok file must dequantise (or fail) without panicking
    let good = valid_file();
    let mut state = 0x9E3779B97F4A7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % bytes.len() as u64) as usize;
            bytes[i] = next() as u8;
        }
        if next() % 4 == 0 {
            let cut = (next() % bytes.len() as u64) as usize;
            bytes.truncate(cut);
        }
        if let Ok(f) = GgufFile::from_bytes(bytes) {
            for t in f.tensors() {
                let _ = f.tensor_f32(&t.name);
            }
        }
    }
}

//! GGUF files in pure Rust: read metadata and tensor infos, dequantise tensors to `f32`,
//! and write small files (for tests and for exporting policies to llama.cpp).
//!
//! GGUF is ggml's single-file model format
//! (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>). A file is, all
//! little-endian:
//!
//! 1. a header: magic `"GGUF"`, `u32` version (2 and 3 are read; 3 is written), `u64`
//!    tensor count, `u64` metadata count;
//! 2. metadata: typed key/value pairs ([`Value`]) such as `general.architecture`,
//!    `llama.block_count`, `tokenizer.ggml.tokens`;
//! 3. tensor infos: name, dimensions in ggml order (`ne0` innermost), [`GgmlType`], and
//!    an offset into the data section;
//! 4. padding to `general.alignment` (default 32), then the tensor data, each tensor
//!    aligned.
//!
//! Quantised types store blocks of elements with shared scales; [`dequant`] documents
//! each supported layout (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K) and its formula,
//! matching ggml's `ggml-quants.c` and gguf-py's `gguf.quants` bit for bit.
//!
//! ```no_run
//! let f = foil_gguf::GgufFile::open("models/SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! assert_eq!(f.architecture(), Some("llama"));
//! let layers = f.get_u64("llama.block_count");
//! let (shape, data) = f.tensor_f32("token_embd.weight")?; // shape is row-major
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod dequant;
pub mod ggml_type;
pub mod reader;
pub mod value;
pub mod writer;

pub use dequant::{dequantize, dequantize_into};
pub use ggml_type::GgmlType;
pub use reader::{GgufFile, TensorInfo};
pub use value::{Value, ValueType};
pub use writer::GgufWriter;

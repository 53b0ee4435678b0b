//! Reading a GGUF file (v2 or v3, little-endian): header, metadata, tensor infos, data.
//!
//! Layout (<https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>):
//!
//! ```text
//! u32 magic = "GGUF"   u32 version   u64 tensor_count   u64 metadata_kv_count
//! metadata_kv_count × { string key; u32 value_type; value }
//! tensor_count × { string name; u32 n_dims; u64 ne[n_dims]; u32 ggml_type; u64 offset }
//! padding to `general.alignment` (default 32)
//! tensor data: each tensor at data_start + offset (offset a multiple of the alignment)
//! ```
//!
//! `ne[0]` is the innermost (fastest-varying) dimension; [`TensorInfo::shape`] gives the
//! row-major order PyTorch and burn use, `ne` reversed.
//!
//! Every length, count and offset read from the file is checked against the bytes that
//! remain (with checked arithmetic) before anything is allocated or sliced, so a
//! malformed or hostile file is an error naming the file, the field and the offset,
//! never a panic or a huge allocation.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, anyhow, bail, ensure};

use crate::dequant;
use crate::ggml_type::GgmlType;
use crate::value::{Value, ValueType};

/// `"GGUF"` read as a little-endian `u32`.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// The alignment of tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: u32 = 4;
/// How deeply arrays may nest (the format allows arrays of arrays; nothing uses them).
const MAX_ARRAY_DEPTH: usize = 8;

/// One tensor's entry in the file's tensor-info table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` (`ne0`) is the innermost.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Byte offset from the start of the data section.
    pub offset: u64,
    n_elements: u64,
    n_bytes: u64,
}

impl TensorInfo {
    /// Row-major (PyTorch) shape: `dims` reversed, so the last axis is `ne0`.
    pub fn shape(&self) -> Vec<usize> {
        // every dim was checked to fit (their product fits a usize) when the file was read
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// Number of elements, the product of `dims` (1 for a zero-dimensional tensor).
    pub fn n_elements(&self) -> u64 {
        self.n_elements
    }

    /// Bytes of data: `n_elements / block_size · type_size`.
    pub fn n_bytes(&self) -> u64 {
        self.n_bytes
    }
}

/// A GGUF file read into memory.
pub struct GgufFile {
    source: String,
    bytes: Vec<u8>,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("source", &self.source)
            .field("len", &self.bytes.len())
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Reads and parses the whole file.
    pub fn open(path: impl AsRef<Path>) -> anyhow::Result<GgufFile> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(bytes, path.display().to_string())
    }

    /// Parses a file already in memory (errors name it `<memory>`).
    pub fn from_bytes(bytes: Vec<u8>) -> anyhow::Result<GgufFile> {
        Self::parse(bytes, "<memory>".to_string())
    }

    fn parse(bytes: Vec<u8>, source: String) -> anyhow::Result<GgufFile> {
        let parsed = Parsed::read(&bytes).with_context(|| format!("reading GGUF {source}"))?;
        Ok(GgufFile {
            source,
            bytes,
            version: parsed.version,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
            key_index: index(&parsed.metadata, |(k, _)| k),
            metadata: parsed.metadata,
            tensor_index: index(&parsed.tensors, |t| &t.name),
            tensors: parsed.tensors,
        })
    }

    /// Where the file came from: its path, or `<memory>`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of tensor data (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section in the file (tensor offsets count from here).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Every metadata key and value, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// Any integer type, if non-negative.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.as_u64()
    }

    /// Any integer type, if it fits an `i64`.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_i64()
    }

    /// Any numeric type.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    /// An array whose elements are all strings.
    pub fn get_str_array(&self, key: &str) -> Option<Vec<&str>> {
        self.get(key)?
            .as_array()?
            .iter()
            .map(Value::as_str)
            .collect()
    }

    /// An array whose elements are all integers fitting an `i64`.
    pub fn get_i64_array(&self, key: &str) -> Option<Vec<i64>> {
        self.get(key)?
            .as_array()?
            .iter()
            .map(Value::as_i64)
            .collect()
    }

    /// An array whose elements are all numeric.
    pub fn get_f64_array(&self, key: &str) -> Option<Vec<f64>> {
        self.get(key)?
            .as_array()?
            .iter()
            .map(Value::as_f64)
            .collect()
    }

    /// `general.architecture` (`"llama"`, …): the prefix of the model's hyperparameter keys.
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// Every tensor info, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw bytes of a tensor, as stored.
    pub fn tensor_data(&self, name: &str) -> anyhow::Result<&[u8]> {
        let t = self
            .tensor_info(name)
            .ok_or_else(|| anyhow!("{}: no tensor named {name:?}", self.source))?;
        // bounds were checked when the file was read
        let start = (self.data_offset + t.offset) as usize;
        Ok(&self.bytes[start..start + t.n_bytes as usize])
    }

    /// A tensor dequantised to `f32`: its row-major shape ([`TensorInfo::shape`]) and
    /// data in that order (which is ggml's order: `ne0` fastest).
    pub fn tensor_f32(&self, name: &str) -> anyhow::Result<(Vec<usize>, Vec<f32>)> {
        let data = self.tensor_data(name)?;
        let t = &self.tensors[self.tensor_index[name]];
        let values =
            dequant::dequantize(t.ggml_type, data, t.n_elements as usize).with_context(|| {
                format!(
                    "{}: tensor {name:?} ({}, dims {:?}) at file offset {}",
                    self.source,
                    t.ggml_type,
                    t.dims,
                    self.data_offset + t.offset
                )
            })?;
        Ok((t.shape(), values))
    }
}

fn index<T>(items: &[T], key: impl Fn(&T) -> &String) -> HashMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, x)| (key(x).clone(), i))
        .collect()
}

/// What the parser extracts; the bytes stay with the caller.
struct Parsed {
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, Value)>,
    tensors: Vec<TensorInfo>,
}

impl Parsed {
    fn read(bytes: &[u8]) -> anyhow::Result<Parsed> {
        let mut c = Cursor { buf: bytes, pos: 0 };
        let magic = c.take(4, "magic")?;
        if magic != GGUF_MAGIC {
            bail!(
                "not a GGUF file: magic is {magic:02x?} ({:?}), expected \"GGUF\"",
                String::from_utf8_lossy(magic)
            );
        }
        let version = c.u32("version")?;
        match version {
            2 | 3 => {}
            1 => bail!("GGUF version 1 is not supported (only 2 and 3)"),
            v if (1..=3).contains(&v.swap_bytes()) => {
                bail!(
                    "big-endian GGUF (version {}) is not supported",
                    v.swap_bytes()
                )
            }
            v => bail!("unknown GGUF version {v} (supported: 2 and 3)"),
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata key/value count")?;

        // smallest key/value: empty key (8) + type id (4) + one-byte value
        let mut metadata =
            Vec::with_capacity(c.capacity_for(n_kv, 8 + 4 + 1, "metadata entries")?);
        let mut seen = HashMap::new();
        for i in 0..n_kv {
            let at = c.pos;
            let key = c
                .string("metadata key")
                .with_context(|| format!("metadata entry {i} at offset {at}"))?;
            let at_value = c.pos;
            let value = c.typed_value(0).with_context(|| {
                format!("metadata {key:?} (entry {i}, value at offset {at_value})")
            })?;
            if seen.insert(key.clone(), i).is_some() {
                bail!("metadata key {key:?} appears twice (entry {i} at offset {at})");
            }
            metadata.push((key, value));
        }

        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => match v.as_u64() {
                Some(a) if a.is_power_of_two() => a,
                _ => bail!("general.alignment must be a non-zero power of two, got {v}"),
            },
        };

        // smallest tensor info: empty name (8) + n_dims (4) + type (4) + offset (8)
        let mut tensors =
            Vec::with_capacity(c.capacity_for(n_tensors, 8 + 4 + 4 + 8, "tensor infos")?);
        let mut seen = HashMap::new();
        for i in 0..n_tensors {
            let at = c.pos;
            let t = c
                .tensor_info(alignment)
                .with_context(|| format!("tensor info {i} at offset {at}"))?;
            if seen.insert(t.name.clone(), i).is_some() {
                bail!(
                    "tensor name {:?} appears twice (tensor info {i} at offset {at})",
                    t.name
                );
            }
            tensors.push(t);
        }

        let data_offset = (c.pos as u64)
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| anyhow!("data section offset overflows"))?;
        let len = bytes.len() as u64;
        for t in &tensors {
            let end = data_offset
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(t.n_bytes));
            match end {
                Some(end) if end <= len => {}
                _ => bail!(
                    "tensor {:?} ({}, dims {:?}, {} bytes) at data offset {} (file offset {}) \
                     runs past the end of the file ({len} bytes)",
                    t.name,
                    t.ggml_type,
                    t.dims,
                    t.n_bytes,
                    t.offset,
                    data_offset as u128 + t.offset as u128,
                ),
            }
        }
        Ok(Parsed {
            version,
            alignment,
            data_offset,
            metadata,
            tensors,
        })
    }
}

/// A position in the file's bytes; every read is bounds-checked.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> anyhow::Result<&'a [u8]> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => bail!(
                "truncated: {what} needs {n} bytes at offset {}, but the file ends at {}",
                self.pos,
                self.buf.len()
            ),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> anyhow::Result<[u8; N]> {
        Ok(self.take(N, what)?.try_into().expect("took N bytes"))
    }

    fn u32(&mut self, what: &str) -> anyhow::Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> anyhow::Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Checks that `count` items of at least `min_size` bytes each can fit in what is left,
    /// and returns `count` as a capacity.
    fn capacity_for(&self, count: u64, min_size: usize, what: &str) -> anyhow::Result<usize> {
        let fits = (self.remaining() / min_size) as u64;
        ensure!(
            count <= fits,
            "truncated or corrupt: {count} {what} at offset {} need at least {min_size} bytes each, \
             but only {} bytes are left",
            self.pos,
            self.remaining()
        );
        Ok(count as usize)
    }

    fn string(&mut self, what: &str) -> anyhow::Result<String> {
        let at = self.pos;
        let len = self.u64(what)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= self.remaining())
            .ok_or_else(|| {
                anyhow!(
                    "truncated: {what} at offset {at} claims {len} bytes, but only {} are left",
                    self.remaining()
                )
            })?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| anyhow!("{what} at offset {at} is not valid UTF-8: {e}"))
    }

    fn value_type(&mut self) -> anyhow::Result<ValueType> {
        let at = self.pos;
        let id = self.u32("value type")?;
        ValueType::from_id(id).ok_or_else(|| {
            anyhow!("unknown metadata value type {id} at offset {at} (known: 0..=12)")
        })
    }

    fn typed_value(&mut self, depth: usize) -> anyhow::Result<Value> {
        let ty = self.value_type()?;
        self.value(ty, depth)
    }

    fn value(&mut self, ty: ValueType, depth: usize) -> anyhow::Result<Value> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>("u8")?[0]),
            ValueType::I8 => Value::I8(self.array::<1>("i8")?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array("u16")?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array("i16")?)),
            ValueType::U32 => Value::U32(self.u32("u32")?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array("i32")?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array("f32")?)),
            ValueType::U64 => Value::U64(self.u64("u64")?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array("i64")?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array("f64")?)),
            ValueType::Bool => {
                let at = self.pos;
                match self.array::<1>("bool")?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => bail!("bool at offset {at} is {b}, not 0 or 1"),
                }
            }
            ValueType::String => Value::String(self.string("string")?),
            ValueType::Array => {
                ensure!(
                    depth < MAX_ARRAY_DEPTH,
                    "arrays nested more than {MAX_ARRAY_DEPTH} deep"
                );
                let elem = self.value_type()?;
                let n = self.u64("array length")?;
                let cap =
                    self.capacity_for(n, elem.min_size(), &format!("{elem} array elements"))?;
                let mut items = Vec::with_capacity(cap);
                for i in 0..n {
                    let at = self.pos;
                    items.push(
                        self.value(elem, depth + 1)
                            .with_context(|| format!("array element {i} at offset {at}"))?,
                    );
                }
                Value::Array(elem, items)
            }
        })
    }

    fn tensor_info(&mut self, alignment: u64) -> anyhow::Result<TensorInfo> {
        let name = self.string("tensor name")?;
        let ctx = |e: anyhow::Error| e.context(format!("tensor {name:?}"));
        let n_dims = self.u32("n_dims").map_err(ctx)?;
        if n_dims > MAX_DIMS {
            return Err(ctx(anyhow!(
                "{n_dims} dimensions (ggml allows at most {MAX_DIMS})"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64("dimension").map_err(ctx)?);
        }
        let at = self.pos;
        let type_id = self.u32("ggml type").map_err(ctx)?;
        let ggml_type = GgmlType::from_id(type_id)
            .ok_or_else(|| ctx(anyhow!("unknown ggml type id {type_id} at offset {at}")))?;
        let offset = self.u64("tensor offset").map_err(ctx)?;

        let n_elements = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .filter(|&n| usize::try_from(n).is_ok())
            .ok_or_else(|| ctx(anyhow!("element count of dims {dims:?} overflows")))?;
        let block = ggml_type.block_size() as u64;
        let ne0 = dims.first().copied().unwrap_or(1);
        if !ne0.is_multiple_of(block) {
            return Err(ctx(anyhow!(
                "innermost dimension {ne0} is not a multiple of {ggml_type}'s block size {block}"
            )));
        }
        let n_bytes = (n_elements / block)
            .checked_mul(ggml_type.type_size() as u64)
            .filter(|&n| usize::try_from(n).is_ok())
            .ok_or_else(|| {
                ctx(anyhow!(
                    "byte size of dims {dims:?} of {ggml_type} overflows"
                ))
            })?;
        if !offset.is_multiple_of(alignment) {
            return Err(ctx(anyhow!(
                "data offset {offset} is not a multiple of the alignment {alignment}"
            )));
        }
        Ok(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            n_elements,
            n_bytes,
        })
    }
}

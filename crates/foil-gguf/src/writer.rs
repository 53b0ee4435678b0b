//! A minimal GGUF v3 writer: metadata of any value type, F32 and F16 tensors (and raw
//! bytes of any ggml type, for tests).
//!
//! Writes the layout [`crate::reader`] reads: header, metadata in insertion order, tensor
//! infos in insertion order, padding to the alignment, then each tensor's data padded to
//! the alignment, tensor `i` at offset `Σ_{j<i} pad(n_bytes_j)` from the data start — the
//! layout ggml and gguf-py write, so llama.cpp can load the result.
//! See <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow, bail, ensure};
use half::f16;

use crate::ggml_type::GgmlType;
use crate::reader::{DEFAULT_ALIGNMENT, GGUF_MAGIC, MAX_DIMS};
use crate::value::Value;

/// Collects metadata and tensors, then writes them as one GGUF v3 file.
#[derive(Debug, Default, Clone)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<Pending>,
}

#[derive(Debug, Clone)]
struct Pending {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    data: Data,
}

/// A tensor's data as kept until the file is written.
#[derive(Debug, Clone)]
enum Data {
    /// Stored bytes, as they go into the file.
    Bytes(Vec<u8>),
    /// F32 values, turned into little-endian bytes chunk by chunk while writing (no
    /// second copy of a large model in memory).
    F32(Vec<f32>),
}

impl Data {
    fn n_bytes(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::F32(v) => v.len() as u64 * 4,
        }
    }

    fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        match self {
            Data::Bytes(b) => w.write_all(b),
            Data::F32(v) => {
                let mut buf = Vec::with_capacity(1 << 16);
                for chunk in v.chunks(1 << 14) {
                    buf.clear();
                    for x in chunk {
                        buf.extend_from_slice(&x.to_le_bytes());
                    }
                    w.write_all(&buf)?;
                }
                Ok(())
            }
        }
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a metadata key (replacing its value, in place, if it is already set).
    /// `general.alignment` (a `u32` by the spec) sets the data alignment, default 32.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        match self.metadata.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.metadata.push((key, value)),
        }
        self
    }

    /// The metadata set so far, in insertion (= file) order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// Adds an F32 tensor. `shape` is row-major (PyTorch order, as
    /// [`crate::TensorInfo::shape`] returns it); `data` is in that order.
    pub fn add_f32(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
    ) -> anyhow::Result<&mut Self> {
        self.add_f32_vec(name, shape, data.to_vec())
    }

    /// [`GgufWriter::add_f32`] taking the values by value: they are kept as they are and
    /// converted to bytes only while the file is written.
    pub fn add_f32_vec(
        &mut self,
        name: &str,
        shape: &[usize],
        data: Vec<f32>,
    ) -> anyhow::Result<&mut Self> {
        self.push(name, shape, GgmlType::F32, Data::F32(data))
    }

    /// Adds an F16 tensor, rounding `data` to half precision (round to nearest even).
    pub fn add_f16(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
    ) -> anyhow::Result<&mut Self> {
        let mut bytes = Vec::with_capacity(data.len() * 2);
        for &x in data {
            bytes.extend_from_slice(&f16::from_f32(x).to_bits().to_le_bytes());
        }
        self.add_raw(name, shape, GgmlType::F16, bytes)
    }

    /// Adds a tensor of any ggml type from its stored bytes. `shape` is row-major; its
    /// last axis (`ne0`) must be a multiple of the type's block size, and `bytes` exactly
    /// `n_elements / block_size · type_size` long.
    pub fn add_raw(
        &mut self,
        name: &str,
        shape: &[usize],
        ty: GgmlType,
        bytes: Vec<u8>,
    ) -> anyhow::Result<&mut Self> {
        self.push(name, shape, ty, Data::Bytes(bytes))
    }

    fn push(
        &mut self,
        name: &str,
        shape: &[usize],
        ty: GgmlType,
        data: Data,
    ) -> anyhow::Result<&mut Self> {
        ensure!(
            shape.len() <= MAX_DIMS as usize,
            "tensor {name:?}: {} dimensions (ggml allows at most {MAX_DIMS})",
            shape.len()
        );
        ensure!(
            !self.tensors.iter().any(|t| t.name == name),
            "tensor {name:?} added twice"
        );
        let n = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| anyhow!("tensor {name:?}: shape {shape:?} overflows"))?;
        let ne0 = shape.last().copied().unwrap_or(1);
        ensure!(
            ne0.is_multiple_of(ty.block_size()),
            "tensor {name:?}: innermost dimension {ne0} is not a multiple of {ty}'s block size {}",
            ty.block_size()
        );
        let want = n / ty.block_size() * ty.type_size();
        ensure!(
            data.n_bytes() == want as u64,
            "tensor {name:?}: shape {shape:?} of {ty} takes {want} bytes, got {}",
            data.n_bytes()
        );
        self.tensors.push(Pending {
            name: name.to_string(),
            dims: shape.iter().rev().map(|&d| d as u64).collect(),
            ty,
            data,
        });
        Ok(self)
    }

    fn alignment(&self) -> anyhow::Result<u64> {
        match self.metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => Ok(DEFAULT_ALIGNMENT),
            Some((_, v)) => match v.as_u64() {
                Some(a) if a.is_power_of_two() => Ok(a),
                _ => bail!("general.alignment must be a non-zero power of two, got {v}"),
            },
        }
    }

    /// Writes the file to `w`.
    pub fn write_to(&self, w: &mut impl Write) -> anyhow::Result<()> {
        let align = self.alignment()?;
        let mut head = Vec::new();
        head.extend(GGUF_MAGIC);
        head.extend(3u32.to_le_bytes());
        head.extend((self.tensors.len() as u64).to_le_bytes());
        head.extend((self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut head, k);
            head.extend(v.value_type().id().to_le_bytes());
            put_value(&mut head, v).with_context(|| format!("metadata {k:?}"))?;
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut head, &t.name);
            head.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                head.extend(d.to_le_bytes());
            }
            head.extend(t.ty.id().to_le_bytes());
            head.extend(offset.to_le_bytes());
            offset = (offset + t.data.n_bytes()).next_multiple_of(align);
        }
        pad(&mut head, align);
        w.write_all(&head)?;
        for t in &self.tensors {
            t.data.write(w)?;
            let n = t.data.n_bytes();
            w.write_all(&vec![0u8; (n.next_multiple_of(align) - n) as usize])?;
        }
        Ok(())
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Writes the file to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = path.as_ref();
        let f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = std::io::BufWriter::new(f);
        self.write_to(&mut w)
            .and_then(|()| Ok(w.flush()?))
            .with_context(|| format!("writing {}", path.display()))
    }
}

fn pad(buf: &mut Vec<u8>, align: u64) {
    let len = (buf.len() as u64).next_multiple_of(align) as usize;
    buf.resize(len, 0);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend((s.len() as u64).to_le_bytes());
    buf.extend(s.as_bytes());
}

/// A value's payload (its type id is written by the caller: array elements have none).
fn put_value(buf: &mut Vec<u8>, v: &Value) -> anyhow::Result<()> {
    match v {
        Value::U8(x) => buf.push(*x),
        Value::I8(x) => buf.extend(x.to_le_bytes()),
        Value::U16(x) => buf.extend(x.to_le_bytes()),
        Value::I16(x) => buf.extend(x.to_le_bytes()),
        Value::U32(x) => buf.extend(x.to_le_bytes()),
        Value::I32(x) => buf.extend(x.to_le_bytes()),
        Value::F32(x) => buf.extend(x.to_le_bytes()),
        Value::Bool(x) => buf.push(u8::from(*x)),
        Value::String(s) => put_str(buf, s),
        Value::U64(x) => buf.extend(x.to_le_bytes()),
        Value::I64(x) => buf.extend(x.to_le_bytes()),
        Value::F64(x) => buf.extend(x.to_le_bytes()),
        Value::Array(elem, items) => {
            buf.extend(elem.id().to_le_bytes());
            buf.extend((items.len() as u64).to_le_bytes());
            for (i, item) in items.iter().enumerate() {
                let t = item.value_type();
                if t != *elem {
                    bail!("array of {elem} has a {t} at index {i}");
                }
                put_value(buf, item)?;
            }
        }
    }
    Ok(())
}

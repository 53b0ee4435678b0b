//! Reused `f32` buffers for the training path's activations and gradients.
//!
//! A train step allocates the same few dozen buffers (2–8 MB each for a d-256 GPT on
//! 16 × 128 tokens) every step. Fresh allocations of that size came back from the kernel
//! as new pages, zero-filled on first touch (`clear_page_erms`: 7 % of a host train step's
//! profile, plus 2 % in `memset` for `vec![0.0; n]`). Buffers handed back with [`give`]
//! are kept by length and handed out again by [`take`] without being cleared.

use std::collections::HashMap;
use std::sync::Mutex;

/// At most this many bytes of buffers are kept; beyond it, given buffers are freed.
const KEEP_BYTES: usize = 1 << 30;

struct Free {
    by_len: HashMap<usize, Vec<Vec<f32>>>,
    bytes: usize,
}

static FREE: Mutex<Option<Free>> = Mutex::new(None);

/// A buffer of `len` values whose contents are unspecified (a reused buffer keeps what
/// its last user wrote): for outputs that are written in full before they are read.
pub fn take(len: usize) -> Vec<f32> {
    reused(len).unwrap_or_else(|| vec![0.0; len])
}

/// A kept buffer of `len` values, if there is one.
fn reused(len: usize) -> Option<Vec<f32>> {
    if len == 0 {
        return None;
    }
    FREE.lock().ok().and_then(|mut guard| {
        let free = guard.as_mut()?;
        let v = free.by_len.get_mut(&len)?.pop()?;
        free.bytes -= len * 4;
        Some(v)
    })
}

/// A buffer of `len` zeros (a fresh allocation is zeroed once, by the allocator).
pub fn zeroed(len: usize) -> Vec<f32> {
    match reused(len) {
        Some(mut v) => {
            v.fill(0.0);
            v
        }
        None => vec![0.0; len],
    }
}

/// Hands `v` back for a later [`take`] of the same length.
pub fn give(v: Vec<f32>) {
    let len = v.len();
    if len == 0 {
        return;
    }
    if let Ok(mut guard) = FREE.lock() {
        let free = guard.get_or_insert_with(|| Free {
            by_len: HashMap::new(),
            bytes: 0,
        });
        if free.bytes + len * 4 <= KEEP_BYTES {
            free.bytes += len * 4;
            free.by_len.entry(len).or_default().push(v);
        }
    }
}

/// Hands every buffer of `vs` back ([`give`]), leaving them empty.
pub fn give_all<'a>(vs: impl IntoIterator<Item = &'a mut Vec<f32>>) {
    for v in vs {
        give(std::mem::take(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_buffers_come_back_for_the_same_length_only() {
        let mut a = take(1234);
        assert_eq!(a.len(), 1234);
        a[7] = 5.0;
        let ptr = a.as_ptr();
        give(a);
        // another length does not get it
        let b = take(1233);
        assert_ne!(b.as_ptr(), ptr);
        // the same length does, contents as left (take) or cleared (zeroed)
        let c = take(1234);
        assert_eq!(c.as_ptr(), ptr);
        assert_eq!(c[7], 5.0);
        give(c);
        let z = zeroed(1234);
        assert!(z.iter().all(|&v| v == 0.0));
        assert!(take(0).is_empty());
    }
}

//! Extraction + normalisation + parsing of an arbitrary response must not panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Some(a) = foil_math::extract_answer(&s) {
        let n = foil_math::normalize(&a);
        let _ = foil_math::parse_answer(&n);
    }
});

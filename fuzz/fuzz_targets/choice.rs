//! Multiple-choice letter extraction on arbitrary text must not panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = foil_math::choice::extract_letter(&s, "ABCDE", true);
    let _ = foil_math::choice::reference_letter(&s);
});

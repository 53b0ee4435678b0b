//! Full verification of an arbitrary (gold, response) pair must not panic or hang; the
//! input is split at the first NUL byte.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let (gold, pred) = s.split_once('\0').unwrap_or((&s, &s));
    let _ = foil_math::is_equivalent(gold, pred);
    let g = foil_math::parse_answer(&foil_math::normalize(gold));
    let p = foil_math::parse_answer(&foil_math::normalize(pred));
    let _ = foil_math::answers_eq(&g, &p);
});

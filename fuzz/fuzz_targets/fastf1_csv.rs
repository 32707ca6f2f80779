#![no_main]
//! See `pitwall::fuzzing::fastf1_csv` for what is checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pitwall::fuzzing::fastf1_csv(data));

#![no_main]
//! See `pitwall::fuzzing::times` for what is checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pitwall::fuzzing::times(data));

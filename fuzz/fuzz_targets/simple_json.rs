#![no_main]
//! See `pitwall::fuzzing::simple_json` for what is checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pitwall::fuzzing::simple_json(data));

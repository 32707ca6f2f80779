#![no_main]
//! See `pitwall::fuzzing::config` for what is checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pitwall::fuzzing::config(data));

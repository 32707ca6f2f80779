#![no_main]
//! See `pitwall::fuzzing::http_query` for what is checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pitwall::fuzzing::http_query(data));

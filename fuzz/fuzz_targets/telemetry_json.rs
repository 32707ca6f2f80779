#![no_main]
//! See `pitwall::fuzzing::telemetry_json` for what is checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pitwall::fuzzing::telemetry_json(data));

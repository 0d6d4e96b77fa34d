//! Fuzz target: see `footrest::fuzzing::cron_schedule` for what it feeds and what it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| footrest::fuzzing::cron_schedule(data));

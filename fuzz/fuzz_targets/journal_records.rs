//! Fuzzes `emporium::fuzzing::journal_records` (see its doc for what it decodes).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| emporium::fuzzing::journal_records(data));

//! Fuzzes `emporium::fuzzing::cluster_frames` (see its doc for what it decodes).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| emporium::fuzzing::cluster_frames(data));

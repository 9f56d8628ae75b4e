//! Fuzzes `emporium::fuzzing::grpc_messages` (see its doc for what it decodes).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| emporium::fuzzing::grpc_messages(data));

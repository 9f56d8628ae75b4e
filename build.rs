//! Generates the gRPC contract under `proto/` into `OUT_DIR` with tonic-prost-build.
//!
//! `protoc` comes from `protoc-bin-vendored`, handed to prost-build directly, so building
//! needs no system protoc (and no `PROTOC` environment variable). Besides the Rust code this
//! writes `vending_descriptor.bin`, the file descriptor set that tonic-reflection serves.

use std::path::PathBuf;

const PROTO_ROOT: &str = "proto";
const PROTOS: &[&str] = &["proto/emporium/vending/v1/vending.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .file_descriptor_set_path(out_dir.join("vending_descriptor.bin"))
        .compile_with_config(config, PROTOS, &[PROTO_ROOT])?;

    // tonic-prost-build already emits rerun-if-changed for each proto file; also watch the
    // root so a newly added file is picked up.
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    Ok(())
}

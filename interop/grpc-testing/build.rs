//! Compiles `proto/grpc/testing/test.proto` (and what it imports) with `protox`,
//! so no system `protoc` is needed.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("proto");
    for file in ["empty", "messages", "test"] {
        println!("cargo:rerun-if-changed={}", proto_dir.join(format!("grpc/testing/{file}.proto")).display());
    }
    let fds = protox::compile(["grpc/testing/test.proto"], [&proto_dir])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}

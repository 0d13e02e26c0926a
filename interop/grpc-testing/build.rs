//! Compiles `proto/src/proto/grpc/testing/test.proto` (and what it imports) with `protox`,
//! so no system `protoc` is needed. The files sit where gRPC's own repository
//! has them (`src/proto/grpc/testing/`), as their imports and the other
//! languages' stubs name them; it also keeps Python's `grpc` package unshadowed.

use std::{env, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("proto");
    for file in ["empty", "messages", "test"] {
        println!(
            "cargo:rerun-if-changed={}",
            proto_dir.join(format!("src/proto/grpc/testing/{file}.proto")).display()
        );
    }
    let fds = protox::compile(["src/proto/grpc/testing/test.proto"], [&proto_dir])?;
    // For reflection, JSON and the playground of the server that serves them.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("grpc_testing_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}

//! Compiles `proto/greeter/v1/greeter.proto` with `protox` (no system
//! `protoc`) and writes its encoded descriptor set, which the server
//! registers for reflection, JSON and the playground.

use std::{env, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("proto");
    let proto_file = proto_dir.join("greeter/v1/greeter.proto");
    println!("cargo:rerun-if-changed={}", proto_file.display());

    let fds = protox::compile([&proto_file], [&proto_dir])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("greeter_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}

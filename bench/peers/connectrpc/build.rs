use std::path::PathBuf;

fn main() {
    let proto_dir = "../../../proto";
    println!("cargo:rerun-if-changed={proto_dir}/connect.proto");

    // connectrpc-build shells out to `protoc` by default; none is needed here:
    // protox compiles the file, and connectrpc-build takes the result as a
    // precompiled descriptor set.
    let fds = protox::Compiler::new([proto_dir])
        .expect("proto include path")
        .include_imports(true)
        .include_source_info(true)
        .open_files(["connect.proto"])
        .expect("compile connect.proto")
        .encode_file_descriptor_set();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let fds_path = out.join("connect.fds.bin");
    std::fs::write(&fds_path, fds).expect("write descriptor set");

    connectrpc_build::Config::new()
        .files(&["connect.proto"])
        .descriptor_set(&fds_path)
        .include_file("_connectrpc.rs")
        .compile()
        .expect("connectrpc codegen");
}

fn main() {
    let proto_dir = "../../../proto";
    println!("cargo:rerun-if-changed={proto_dir}/connect.proto");
    // protox stands in for protoc; prost-build generates the message types
    // (`_.rs` in OUT_DIR: the file has no `package` line).
    let fds = protox::compile(["connect.proto"], [proto_dir]).expect("compile connect.proto");
    prost_build::Config::new().compile_fds(fds).expect("prost codegen");
}

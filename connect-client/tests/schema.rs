//! `list`, `describe` and `call` with the schema in files (`--proto`,
//! `--import-path`, `--protoset`) instead of reflection, against a server
//! without reflection, and each bad input's one line and exit code.

mod common;

use std::path::PathBuf;

use common::{client, client_with_input, start_server_without_reflection, text};
use prost::Message;

/// An address where nothing listens: from files, `list` and `describe` never connect.
const NOWHERE: &str = "http://127.0.0.1:1";

/// What `describe ConnectService` prints, from reflection or from files alike.
const CONNECT_SERVICE: &str = "service ConnectService\n\
    \x20 rpc UnaryRPC(RequestMessage) returns (ResponseMessage)\n\
    \x20 rpc ServerStreamRPC(RequestMessage) returns (stream ResponseMessage)\n\
    \x20 rpc ClientStreamRPC(stream RequestMessage) returns (ResponseMessage)\n\
    \x20 rpc BidiStreamRPC(stream RequestMessage) returns (stream ResponseMessage)\n";

/// The message of a server without reflection.
const NO_REFLECTION: &str = "the server does not offer reflection (grpc.reflection.v1 and v1alpha: \
    UNIMPLEMENTED); give its schema with --proto FILE or --protoset FILE\n";

/// A fresh directory of schema files, removed at the end of the test.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("connect-client-schema-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// Writes `contents` to `name` (which may have directories) and returns its path.
    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        self.path(name)
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    /// The repository's `connect.proto`, copied in.
    fn connect_proto(&self) -> String {
        self.write("connect.proto", std::fs::read("../proto/connect.proto").unwrap())
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Asserts the exit code, stdout and stderr of a run, in one comparison.
fn assert_output(output: &std::process::Output, code: i32, stdout: &str, stderr: &str) {
    assert_eq!(
        (output.status.code(), text(&output.stdout).as_str(), text(&output.stderr).as_str()),
        (Some(code), stdout, stderr)
    );
}

#[tokio::test]
async fn a_server_without_reflection_says_so_and_names_the_way_out() {
    let url = start_server_without_reflection().await;
    assert_output(&client(&url, &["list"]).await, 1, "", NO_REFLECTION);
    assert_output(&client(&url, &["describe"]).await, 1, "", NO_REFLECTION);
    assert_output(&client(&url, &["describe", "ConnectService"]).await, 1, "", NO_REFLECTION);
    assert_output(&client(&url, &["call", "ConnectService/UnaryRPC"]).await, 1, "", NO_REFLECTION);
}

#[tokio::test]
async fn a_proto_without_import_path_serves_list_describe_and_call() {
    let url = start_server_without_reflection().await;
    let files = Files::new("proto");
    let proto = files.connect_proto();
    // Its directory is the import path: `list` and `describe` need no server.
    assert_output(&client(NOWHERE, &["--proto", &proto, "list"]).await, 0, "ConnectService\n", "");
    assert_output(&client(NOWHERE, &["--proto", &proto, "describe"]).await, 0, CONNECT_SERVICE, "");
    let output = client(NOWHERE, &["--proto", &proto, "describe", "ConnectService.UnaryRPC"]).await;
    assert_output(&output, 0, "rpc UnaryRPC(RequestMessage) returns (ResponseMessage)\n", "");

    let output =
        client(&url, &["--proto", &proto, "call", "ConnectService/UnaryRPC", "-d", r#"{"requestData":"x"}"#])
            .await;
    assert_output(&output, 0, "{\"responseData\":\"Hello, x\"}\n", "");
    let requests = b"{\"requestData\":\"a\"}\n{\"requestData\":\"b\"}\n";
    let args = ["--proto", &proto, "call", "ConnectService/BidiStreamRPC", "-d", "@-"];
    let output = client_with_input(&url, &args, requests).await;
    assert_output(&output, 0, "{\"responseData\":\"Hello, a\"}\n{\"responseData\":\"Hello, b\"}\n", "");
}

#[tokio::test]
async fn import_paths_find_the_files_their_imports_and_the_well_known_types() {
    let files = Files::new("imports");
    files.write(
        "common/types.proto",
        "syntax = \"proto3\";\npackage shop.common;\nmessage Money { int64 cents = 1; }\n",
    );
    files.write(
        "api/shop.proto",
        "syntax = \"proto3\";\npackage shop.v1;\nimport \"common/types.proto\";\n\
         import \"google/protobuf/empty.proto\";\n\
         service Shop { rpc Total(google.protobuf.Empty) returns (shop.common.Money); }\n",
    );
    let root = files.path("");
    // `--proto` names the file relative to an import path, as protoc and grpcurl do.
    let args = ["--import-path", &root, "--proto", "api/shop.proto"];
    let output = client(NOWHERE, &[&args[..], &["list"]].concat()).await;
    assert_output(&output, 0, "shop.v1.Shop\n", "");
    let output = client(NOWHERE, &[&args[..], &["describe"]].concat()).await;
    assert_output(
        &output,
        0,
        "service shop.v1.Shop\n  rpc Total(google.protobuf.Empty) returns (shop.common.Money)\n",
        "",
    );
    let output = client(NOWHERE, &[&args[..], &["describe", "shop.common.Money"]].concat()).await;
    assert_output(&output, 0, "message shop.common.Money\n  int64 cents = 1\n", "");

    // Without `--import-path` the file's own directory is searched, where `common/` is not.
    let output = client(NOWHERE, &["--proto", &files.path("api/shop.proto"), "list"]).await;
    let searched = files.path("api");
    let expected = format!(
        "error: shop.proto:3:1: import 'common/types.proto' not found \
         (import paths searched: {searched}, then the well-known types)\n"
    );
    assert_output(&output, 2, "", &expected);
}

#[tokio::test]
async fn a_protoset_serves_list_describe_and_call() {
    let url = start_server_without_reflection().await;
    let files = Files::new("protoset");
    let proto = files.connect_proto();
    let set = protox::compile([&proto], [files.path("")]).unwrap();
    let protoset = files.write("connect.protoset", set.encode_to_vec());
    assert_output(&client(NOWHERE, &["--protoset", &protoset, "list"]).await, 0, "ConnectService\n", "");
    let output = client(NOWHERE, &["--protoset", &protoset, "describe", "RequestMessage"]).await;
    let message =
        "message RequestMessage\n  string request_data = 1\n  uint32 count = 2\n  uint32 interval_ms = 3\n";
    assert_output(&output, 0, message, "");

    let data = r#"{"requestData":"x","count":2}"#;
    let output =
        client(&url, &["--protoset", &protoset, "call", "ConnectService/ServerStreamRPC", "-d", data]).await;
    let responses =
        "{\"responseData\":\"Hello, x: server(1) \"}\n{\"responseData\":\"Hello, x: server(2) \"}\n";
    assert_output(&output, 0, responses, "");
}

#[tokio::test]
async fn bad_schema_files_are_one_line_and_exit_2() {
    let files = Files::new("bad");
    let proto = files.connect_proto();
    let dir = files.path("");
    let dir = dir.trim_end_matches('/');
    let missing = files.path("missing.proto");
    let output = client(NOWHERE, &["--proto", &missing, "list"]).await;
    let expected = format!("error: --proto {missing}: no such file (import paths searched: {dir})\n");
    assert_output(&output, 2, "", &expected);

    let bad = files.write("bad.proto", "syntax = \"proto3\";\nmessage A {\n  string x = 1\n}\n");
    let output = client(NOWHERE, &["--proto", &bad, "list"]).await;
    assert_output(&output, 2, "", "error: bad.proto:4:1: expected ';' or '[', but found '}'\n");

    let protoset = files.write("bad.protoset", "not a protoset\n");
    let output = client(NOWHERE, &["--protoset", &protoset, "list"]).await;
    let expected = format!(
        "error: --protoset {protoset}: not an encoded FileDescriptorSet: \
         failed to decode Protobuf message: invalid wire type value: 6\n"
    );
    assert_output(&output, 2, "", &expected);
    let absent = files.path("absent.protoset");
    let output = client(NOWHERE, &["--protoset", &absent, "list"]).await;
    assert_output(
        &output,
        2,
        "",
        &format!("error: --protoset {absent}: No such file or directory (os error 2)\n"),
    );

    // Names the files do not define: checked before connecting.
    let output = client(NOWHERE, &["--proto", &proto, "describe", "Nope"]).await;
    assert_output(&output, 2, "", "error: the --proto/--protoset files do not define \"Nope\"\n");
    let output = client(NOWHERE, &["--proto", &proto, "call", "ConnectService/Nope"]).await;
    assert_output(
        &output,
        2,
        "",
        "error: the --proto/--protoset files do not define \"ConnectService/Nope\"\n",
    );
    let output = client(NOWHERE, &["--proto", &proto, "call", "Nope/Call"]).await;
    assert_output(&output, 2, "", "error: the --proto/--protoset files do not define \"Nope\"\n");

    let output = client(NOWHERE, &["--proto", &proto, "list", "--protoset", &protoset]).await;
    assert_output(&output, 2, "", "error: --proto and --protoset cannot be used together\n");
    let output = client(NOWHERE, &["list", "--import-path", dir]).await;
    assert_output(&output, 2, "", "error: --import-path needs --proto\n");
}

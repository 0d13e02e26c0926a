//! The example of a user's own service: `greeter.v1.Greeter`, its handlers
//! ([`Greeter`]) and its descriptors ([`FILE_DESCRIPTOR_SET`]). The binary
//! (`cargo run -p greeter`) serves it with connect-server's builder.

/// The generated messages, client and server of `greeter.v1`.
pub mod pb {
    #![allow(missing_docs, unreachable_pub)]
    tonic::include_proto!("greeter.v1");
}

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use pb::{SayHelloRequest, SayHelloResponse, greeter_server};

pub use pb::greeter_server::GreeterServer;

/// The encoded `FileDescriptorSet` of `greeter.proto`, for the builder.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/greeter_descriptor.bin"));

/// Most greetings one `SayHelloStream` call may ask for.
pub const MAX_TIMES: u32 = 100;

/// The handlers: no state, and nothing about protocols, metrics or logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Greeter;

/// `Hello, NAME` (`World` when the name is empty).
fn greeting(name: &str) -> SayHelloResponse {
    let name = if name.is_empty() { "World" } else { name };
    SayHelloResponse { message: format!("Hello, {name}") }
}

#[tonic::async_trait]
impl greeter_server::Greeter for Greeter {
    async fn say_hello(
        &self,
        request: Request<SayHelloRequest>,
    ) -> Result<Response<SayHelloResponse>, Status> {
        Ok(Response::new(greeting(&request.get_ref().name)))
    }

    type SayHelloStreamStream = Pin<Box<dyn Stream<Item = Result<SayHelloResponse, Status>> + Send>>;

    async fn say_hello_stream(
        &self,
        request: Request<SayHelloRequest>,
    ) -> Result<Response<Self::SayHelloStreamStream>, Status> {
        let SayHelloRequest { name, times } = request.into_inner();
        if times > MAX_TIMES {
            return Err(Status::invalid_argument(format!("times must be at most {MAX_TIMES}")));
        }
        let times = if times == 0 { 3 } else { times };
        let greetings = (1..=times).map(move |i| {
            let SayHelloResponse { message } = greeting(&name);
            Ok(SayHelloResponse { message: format!("{message} ({i}/{times})") })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(greetings))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use greeter_server::Greeter as _;
    use tokio_stream::StreamExt as _;

    #[tokio::test]
    async fn greets_by_name_or_the_world() {
        let ada = Greeter.say_hello(Request::new(SayHelloRequest { name: "Ada".into(), times: 0 })).await;
        assert_eq!(ada.unwrap().into_inner().message, "Hello, Ada");
        let nobody = Greeter.say_hello(Request::new(SayHelloRequest::default())).await;
        assert_eq!(nobody.unwrap().into_inner().message, "Hello, World");
    }

    #[tokio::test]
    async fn streams_the_greetings_asked_for() {
        let request = Request::new(SayHelloRequest { name: "Ada".into(), times: 2 });
        let stream = Greeter.say_hello_stream(request).await.unwrap().into_inner();
        let messages: Vec<String> = stream.map(|greeting| greeting.unwrap().message).collect().await;
        assert_eq!(messages, ["Hello, Ada (1/2)", "Hello, Ada (2/2)"]);
        let too_many = Request::new(SayHelloRequest { name: "Ada".into(), times: 101 });
        let status = Greeter.say_hello_stream(too_many).await.err().unwrap();
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::InvalidArgument, "times must be at most 100")
        );
    }
}

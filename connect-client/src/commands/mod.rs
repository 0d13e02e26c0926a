//! What the client does once its flags are read: one module per command or
//! group of commands, each taking settings and an [`Output`], never the flags.

pub mod calls;
pub mod describe;
pub mod dynamic;
pub mod probe;
pub mod repeat;
pub mod ui;

use std::time::Duration;

use connect_proto::RequestMessage;
use prost_reflect::DescriptorPool;

use crate::{
    bench::BenchSettings,
    call::{
        self, CallOptions,
        retry::{RetryPolicy, RetrySettings},
    },
    channel::{self, ChannelSettings},
    error::ClientError,
    output::Output,
    schema::{Schema, SchemaSource},
};
use dynamic::DynamicCall;
use repeat::RepeatSettings;
use ui::UiSettings;

/// Everything a command needs, made once from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where and how to connect.
    pub channel: ChannelSettings,
    /// What every call carries.
    pub call: CallOptions,
    /// Each call's deadline, sent as `grpc-timeout`.
    pub timeout: Option<Duration>,
    /// How idempotent calls are retried.
    pub retry: RetrySettings,
    /// Where `list`, `describe` and `call` find the descriptors.
    pub schema: SchemaSource,
    /// What to do.
    pub action: Action,
}

/// What a command does.
#[derive(Debug, Clone)]
pub enum Action {
    /// One `UnaryRPC` with this `request_data`.
    Unary(String),
    /// `UnaryRPC` with this `request_data`, repeated and tallied.
    Repeat(String, RepeatSettings),
    /// One `ServerStreamRPC`.
    ServerStream(RequestMessage),
    /// One `ClientStreamRPC` with these requests; from stdin when empty.
    ClientStream(Vec<String>),
    /// One `BidiStreamRPC` with stdin's lines.
    Bidi,
    /// A health check of this service (`""`: the server).
    Health(String),
    /// The services the schema lists.
    List,
    /// Every service the schema lists, or the one symbol named.
    Describe(Option<String>),
    /// Any method, found in the schema, with JSON requests and responses.
    Call(DynamicCall),
    /// The load generator.
    Bench(Box<BenchSettings>),
    /// The browser playground, served locally for the server.
    Ui(UiSettings),
}

/// Runs the command `settings` describe, writing what it prints to `output`.
pub async fn run(settings: Settings, output: &Output) -> Result<(), ClientError> {
    // The benchmark opens its own connections and sets each call's deadline itself.
    if let Action::Bench(bench) = settings.action {
        return crate::bench::run(&bench, output).await;
    }
    // Bad schema files are reported before connecting, and from files `list`
    // and `describe` need no server at all.
    let files = match &settings.action {
        Action::List | Action::Describe(_) | Action::Call(_) | Action::Ui(_) => settings.schema.load()?,
        _ => None,
    };
    if let Some(pool) = &files
        && let Some(done) = without_server(&settings.action, pool, output).await
    {
        return done;
    }
    let connected = channel::open(&settings.channel, output).await?;
    let policy = RetryPolicy::new(&settings.retry, connected.reprobe.clone())
        .wait_for_ready(settings.channel.wait_for_ready)
        .with_output(output.clone());
    let channel = connected.transport;
    let options = CallOptions { output: output.clone(), ..settings.call };
    let timeout = settings.timeout;
    let mut client = call::client(channel.clone(), &options)?;
    if let Action::Repeat(data, repeat) = &settings.action {
        // Each repeated call has its own deadline, so the whole run is not bounded by one.
        return repeat::unary(&client, timeout, &policy, data, repeat, output).await.map(drop);
    }
    if let Action::Ui(ui) = &settings.action {
        // Serves until stopped: no deadline but each reflection question's and each call's own.
        let quiet = CallOptions { verbose: false, ..options.clone() };
        let schema = Schema::new(files, call::call_channel(channel.clone(), &quiet)?, timeout);
        let channel = call::call_channel(channel, &options)?;
        return ui::serve(schema, channel, &settings.channel.addrs[0], ui, output).await;
    }
    let command = async {
        match settings.action {
            Action::Health(service) => {
                probe::health(call::call_channel(channel, &options)?, service, timeout, output).await
            }
            Action::List => {
                probe::list(Schema::new(files, call::call_channel(channel, &options)?, timeout), output).await
            }
            Action::Describe(symbol) => {
                let schema = Schema::new(files, call::call_channel(channel, &options)?, timeout);
                describe::describe(schema, symbol, output).await
            }
            Action::Call(dynamic) => {
                // `-v` shows the metadata of the call itself, not of the reflection calls before it.
                let quiet = CallOptions { verbose: false, ..options.clone() };
                let schema = Schema::new(files, call::call_channel(channel.clone(), &quiet)?, timeout);
                let channel = call::call_channel(channel, &options)?;
                dynamic::call(schema, channel, options.compress, dynamic, timeout, output).await
            }
            Action::Unary(data) => calls::unary(&mut client, timeout, &policy, data, output).await,
            Action::ServerStream(message) => {
                calls::server_stream(&mut client, timeout, &policy, message, output).await
            }
            Action::ClientStream(data) => calls::client_stream(&mut client, timeout, data, output).await,
            Action::Bidi => calls::bidi(&mut client, timeout, output).await,
            Action::Repeat(..) | Action::Bench(_) | Action::Ui(_) => unreachable!("handled above"),
        }
    };
    call::with_backstop(timeout, command).await
}

/// Runs `list` or `describe` on the descriptors of the schema files, with no
/// connection, and checks that the files define `call`'s method before
/// connecting; `None` when the command goes on to the server.
async fn without_server(
    action: &Action,
    pool: &DescriptorPool,
    output: &Output,
) -> Option<Result<(), ClientError>> {
    let mut schema = Schema::Files(pool.clone());
    match action {
        Action::List => Some(probe::list(schema, output).await),
        Action::Describe(symbol) => Some(describe::describe(schema, symbol.clone(), output).await),
        Action::Call(call) => schema.method(&call.method).await.err().map(Err),
        _ => None,
    }
}

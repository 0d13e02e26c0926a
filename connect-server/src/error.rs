//! The one error type of the library: what can go wrong building a server
//! ([`Builder::build`](crate::Builder::build)), binding its listeners
//! ([`bind`](crate::bind)) and serving ([`ConnectServer::serve`](crate::ConnectServer::serve)).

/// Why a server could not be built or could not serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flag or a file it names is wrong (a certificate, the token file, an address in use).
    #[error("{0}")]
    Config(String),
    /// An encoded `FileDescriptorSet` that does not decode, or whose files do not link.
    #[error("invalid file descriptor set: {0}")]
    Descriptors(#[source] prost_reflect::DescriptorError),
    /// A service was added whose descriptors no registered `FileDescriptorSet` has.
    #[error(
        "service {0} has no descriptors: add the FileDescriptorSet that defines it with `file_descriptor_set`"
    )]
    NoDescriptors(String),
    /// Two services with the same name.
    #[error("service {0} is added twice")]
    DuplicateService(String),
    /// `serve` was given no listener.
    #[error("nothing to serve: no listener")]
    NoListener,
    /// A listener or a worker failed while serving.
    #[error("{0}")]
    Serve(String),
}

impl Error {
    /// A configuration error with its whole chain of causes in one line.
    pub(crate) fn config(error: anyhow::Error) -> Self {
        Self::Config(format!("{error:#}"))
    }

    /// A serving error with its whole chain of causes in one line.
    pub(crate) fn serve(error: anyhow::Error) -> Self {
        Self::Serve(format!("{error:#}"))
    }
}

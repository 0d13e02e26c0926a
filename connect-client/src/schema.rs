//! Where `list`, `describe` and `call` find the descriptors of a server's
//! services: its gRPC reflection ([`crate::reflect`]), or files given on the
//! command line, as grpcurl's `-proto`/`-import-path`/`-protoset` and
//! `buf curl --schema` take them: `.proto` files compiled at run time with
//! protox (no system `protoc`), or encoded `FileDescriptorSet`s. The commands
//! ask a [`Schema`] and do not care which it is.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use miette::Diagnostic;
use prost::Message;
use prost_reflect::{DescriptorPool, MethodDescriptor, prost_types::FileDescriptorSet};

use crate::{call::CallChannel, error::ClientError, reflect::Reflection};

/// Where the schema comes from, as the flags chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// The server's reflection (no schema flag).
    Reflection,
    /// `.proto` files (`--proto`), searched for with their imports in `import_paths`.
    Files {
        /// The files, as given.
        protos: Vec<PathBuf>,
        /// `--import-path`; none: the directory of each file.
        import_paths: Vec<PathBuf>,
    },
    /// Encoded `FileDescriptorSet`s (`--protoset`).
    Protoset(Vec<PathBuf>),
}

impl SchemaSource {
    /// The descriptors the files define, or `None` for reflection. Bad files
    /// are bad input: each failure is one line and a usage error (exit 2).
    pub fn load(&self) -> Result<Option<DescriptorPool>, ClientError> {
        match self {
            Self::Reflection => Ok(None),
            Self::Files { protos, import_paths } => compile(protos, import_paths).map(Some),
            Self::Protoset(paths) => decode(paths).map(Some),
        }
    }
}

/// Compiles `protos` with protox; the well-known types need no import path.
fn compile(protos: &[PathBuf], import_paths: &[PathBuf]) -> Result<DescriptorPool, ClientError> {
    // As grpcurl: without `--import-path`, each file's own directory.
    let dirs: Vec<PathBuf> = if import_paths.is_empty() {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for dir in protos.iter().map(|proto| directory_of(proto)) {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    } else {
        import_paths.to_vec()
    };
    for proto in protos {
        // protox would say "not in any include path" for a file that does not exist at all.
        if !proto.is_file() && !dirs.iter().any(|dir| dir.join(proto).is_file()) {
            return Err(ClientError::Usage(format!(
                "--proto {}: no such file (import paths searched: {})",
                proto.display(),
                joined(&dirs)
            )));
        }
    }
    let mut compiler = protox::Compiler::new(&dirs).map_err(|error| proto_error(&error, &dirs))?;
    compiler.include_imports(true);
    compiler.open_files(protos).map_err(|error| proto_error(&error, &dirs))?;
    Ok(compiler.descriptor_pool())
}

/// The directory a `--proto` file is in (`.` for a bare file name).
fn directory_of(proto: &Path) -> PathBuf {
    match proto.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `a, b`, for naming the import paths.
fn joined(dirs: &[PathBuf]) -> String {
    dirs.iter().map(|dir| dir.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// protox's error on one line, `file:line:column: message`, naming the import
/// paths when a file was not found in them.
fn proto_error(error: &protox::Error, dirs: &[PathBuf]) -> ClientError {
    let mut line = error.to_string();
    if let Some(file) = error.file() {
        let at = position(error).map(|(row, column)| format!(":{row}:{column}")).unwrap_or_default();
        line = format!("{file}{at}: {line}");
    }
    if error.is_file_not_found() {
        line.push_str(&format!(" (import paths searched: {}, then the well-known types)", joined(dirs)));
    }
    ClientError::Usage(line)
}

/// The line and column (from 1) of the first place the diagnostic points at.
fn position(error: &protox::Error) -> Option<(usize, usize)> {
    let label = error.labels()?.next()?;
    let contents = error.source_code()?.read_span(label.inner(), 0, 0).ok()?;
    Some((contents.line() + 1, contents.column() + 1))
}

/// The files of every protoset, in one pool; a file in several is taken once.
fn decode(paths: &[PathBuf]) -> Result<DescriptorPool, ClientError> {
    let mut files = std::collections::BTreeMap::new();
    for path in paths {
        let bytes = std::fs::read(path)
            .map_err(|error| ClientError::Usage(format!("--protoset {}: {error}", path.display())))?;
        let set = FileDescriptorSet::decode(bytes.as_slice()).map_err(|error| {
            ClientError::Usage(format!(
                "--protoset {}: not an encoded FileDescriptorSet: {error}",
                path.display()
            ))
        })?;
        for file in set.file {
            files.entry(file.name().to_owned()).or_insert(file);
        }
    }
    let mut pool = DescriptorPool::new();
    // A set written without its imports (`protoc -o` without `--include_imports`) fails here.
    pool.add_file_descriptor_protos(files.into_values()).map_err(|error| {
        ClientError::Usage(format!("--protoset: the descriptors are incomplete or invalid: {error}"))
    })?;
    Ok(pool)
}

/// The descriptors the commands ask about, from the server or from files.
#[derive(Debug)]
pub enum Schema {
    /// Asked of the server, question by question.
    Reflection(Box<Reflection>),
    /// Loaded from `--proto` or `--protoset` files, all at once.
    Files(DescriptorPool),
}

impl Schema {
    /// The files' descriptors when there are some, else the reflection of
    /// the server on `channel`, each question within `timeout`.
    pub fn new(files: Option<DescriptorPool>, channel: CallChannel, timeout: Option<Duration>) -> Self {
        match files {
            Some(pool) => Self::Files(pool),
            None => Self::Reflection(Box::new(Reflection::new(channel, timeout))),
        }
    }

    /// The names of the services: those the server lists, or every one the files define.
    pub async fn list_services(&mut self) -> Result<Vec<String>, ClientError> {
        match self {
            Self::Reflection(reflection) => reflection.list_services().await,
            Self::Files(pool) => Ok(pool.services().map(|service| service.full_name().to_owned()).collect()),
        }
    }

    /// Descriptors defining `symbols` (fully qualified names) and their dependencies.
    pub async fn pool(&mut self, symbols: &[String]) -> Result<DescriptorPool, ClientError> {
        match self {
            Self::Reflection(reflection) => reflection.pool(symbols).await,
            Self::Files(pool) => match symbols.iter().find(|symbol| !defines(pool, symbol)) {
                Some(symbol) => Err(self.missing(symbol)),
                None => Ok(pool.clone()),
            },
        }
    }

    /// The method `Service/Method` (or `Service.Method`).
    pub async fn method(&mut self, name: &str) -> Result<MethodDescriptor, ClientError> {
        let Some((service, method)) = name.rsplit_once('/').or_else(|| name.rsplit_once('.')) else {
            return Err(ClientError::Other(format!("expected SERVICE/METHOD, got {name:?}")));
        };
        let pool = self.pool(&[service.to_owned()]).await?;
        find_method(&pool, name).ok_or_else(|| match self {
            Self::Reflection(_) => {
                ClientError::Other(format!("service {service:?} has no method {method:?}"))
            }
            Self::Files(_) => self.missing(name),
        })
    }

    /// The error for a `symbol` the schema does not have: a server's answer
    /// (exit 4), or a name the files lack, which is bad input (exit 2).
    pub fn missing(&self, symbol: &str) -> ClientError {
        match self {
            Self::Reflection(_) => ClientError::Other(format!("the server does not describe {symbol:?}")),
            Self::Files(_) => {
                ClientError::Usage(format!("the --proto/--protoset files do not define {symbol:?}"))
            }
        }
    }
}

/// Whether `pool` has a service, method, message or enum named `symbol`.
fn defines(pool: &DescriptorPool, symbol: &str) -> bool {
    pool.get_service_by_name(symbol).is_some()
        || pool.get_message_by_name(symbol).is_some()
        || pool.get_enum_by_name(symbol).is_some()
        || find_method(pool, symbol).is_some()
}

/// The method `Service/Method` or `Service.Method` in `pool`.
pub(crate) fn find_method(pool: &DescriptorPool, name: &str) -> Option<MethodDescriptor> {
    let (service, method) = name.rsplit_once('/').or_else(|| name.rsplit_once('.'))?;
    pool.get_service_by_name(service)?.methods().find(|candidate| candidate.name() == method)
}

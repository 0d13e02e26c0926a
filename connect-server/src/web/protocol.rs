//! Which protocol a request speaks, told from its `content-type`, and which
//! protocols the server has turned on (`--protocols`).

use http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};

use crate::grpc::content_type;

/// A protocol the server can speak on its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Protocol {
    /// gRPC over HTTP/2 (`application/grpc`).
    Grpc,
    /// gRPC-Web over HTTP/1.1 or HTTP/2 (`application/grpc-web`, `-text`).
    GrpcWeb,
    /// The Connect protocol over HTTP/1.1 or HTTP/2 (`application/proto`,
    /// `application/json`, `application/connect+proto`, `application/connect+json`).
    Connect,
    /// A call from the browser playground on the metrics endpoint (not a
    /// protocol of the port, so `--protocols` does not name it).
    #[value(skip)]
    Playground,
}

impl Protocol {
    /// The name in the access log, as `--protocols` spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::Connect => "connect",
            Self::Playground => "playground",
        }
    }
}

/// What the request extensions tell the observe layer about a call that did
/// not come as plain gRPC: its protocol, or that no enabled protocol speaks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrived {
    /// Translated into gRPC from this protocol.
    Via(Protocol),
    /// A content type no enabled protocol speaks: answered with HTTP 415.
    Unsupported,
}

/// How a Connect message is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// Protobuf's binary encoding.
    Proto,
    /// Canonical proto3 JSON.
    Json,
}

/// What a request's `content-type` says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `application/grpc[+proto]`.
    Grpc,
    /// `application/grpc-web[-text][+proto]`.
    GrpcWeb,
    /// A Connect unary call (`application/proto`, `application/json`).
    ConnectUnary(Codec),
    /// A Connect streaming call (`application/connect+proto`, `application/connect+json`).
    ConnectStream(Codec),
    /// Anything else, or no content type.
    Other,
}

impl Kind {
    /// The kind of a request with `headers`. Parameters (`; charset=utf-8`) are
    /// ignored; the type itself is compared without regard to case.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let content_type = headers.get(CONTENT_TYPE);
        // gRPC as the observe layer reads it (`application/grpc`, `+anything`, `;params`).
        if content_type::is_grpc(content_type) {
            return Self::Grpc;
        }
        let Some(value) = content_type.and_then(|value| value.to_str().ok()) else {
            return Self::Other;
        };
        let essence = value.split(';').next().unwrap_or_default().trim();
        WEB_TYPES
            .iter()
            .find(|(name, _)| essence.eq_ignore_ascii_case(name))
            .map_or(Self::Other, |(_, kind)| *kind)
    }
}

/// The content types of the web protocols, and what each is.
const WEB_TYPES: [(&str, Kind); 8] = [
    ("application/grpc-web", Kind::GrpcWeb),
    ("application/grpc-web+proto", Kind::GrpcWeb),
    ("application/grpc-web-text", Kind::GrpcWeb),
    ("application/grpc-web-text+proto", Kind::GrpcWeb),
    ("application/proto", Kind::ConnectUnary(Codec::Proto)),
    ("application/json", Kind::ConnectUnary(Codec::Json)),
    ("application/connect+proto", Kind::ConnectStream(Codec::Proto)),
    ("application/connect+json", Kind::ConnectStream(Codec::Json)),
];

/// The protocols turned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Enabled {
    pub(crate) grpc: bool,
    pub(crate) grpc_web: bool,
    pub(crate) connect: bool,
}

impl Enabled {
    /// The set `--protocols` names.
    pub(crate) fn from_list(protocols: &[Protocol]) -> Self {
        Self {
            grpc: protocols.contains(&Protocol::Grpc),
            grpc_web: protocols.contains(&Protocol::GrpcWeb),
            connect: protocols.contains(&Protocol::Connect),
        }
    }

    /// Whether a protocol that HTTP/1.1 clients speak is on.
    pub(crate) fn needs_http1(self) -> bool {
        self.grpc_web || self.connect
    }

    /// The content types these protocols accept, for the body of a 415.
    pub(crate) fn accepted_content_types(self) -> HeaderValue {
        let mut types = Vec::new();
        if self.grpc {
            types.extend(["application/grpc", "application/grpc+proto"]);
        }
        if self.grpc_web {
            types.extend(["application/grpc-web", "application/grpc-web+proto", "application/grpc-web-text"]);
        }
        if self.connect {
            types.extend([
                "application/proto",
                "application/json",
                "application/connect+proto",
                "application/connect+json",
            ]);
        }
        HeaderValue::from_str(&types.join(", ")).expect("content types are valid header text")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(content_type: &'static str) -> Kind {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Kind::of(&headers)
    }

    #[test]
    fn tells_the_protocols_apart() {
        assert_eq!(kind("application/grpc"), Kind::Grpc);
        assert_eq!(kind("application/grpc+proto"), Kind::Grpc);
        assert_eq!(kind("application/grpc-web-text"), Kind::GrpcWeb);
        assert_eq!(kind("application/grpc-web+proto"), Kind::GrpcWeb);
        assert_eq!(kind("application/json; charset=utf-8"), Kind::ConnectUnary(Codec::Json));
        assert_eq!(kind("Application/Proto"), Kind::ConnectUnary(Codec::Proto));
        assert_eq!(kind("application/connect+json"), Kind::ConnectStream(Codec::Json));
        assert_eq!(kind("application/connect+proto"), Kind::ConnectStream(Codec::Proto));
        // As the observe layer reads gRPC: tonic answers a codec it does not speak.
        assert_eq!(kind("application/grpc+json"), Kind::Grpc);
        assert_eq!(kind("application/grpcx"), Kind::Other);
        assert_eq!(kind("text/plain"), Kind::Other);
        assert_eq!(Kind::of(&HeaderMap::new()), Kind::Other);
    }

    #[test]
    fn the_playground_is_logged_but_not_a_protocol_of_the_port() {
        assert_eq!(Protocol::Playground.name(), "playground");
        assert!(<Protocol as clap::ValueEnum>::from_str("playground", true).is_err());
        assert_eq!(<Protocol as clap::ValueEnum>::from_str("grpc-web", true), Ok(Protocol::GrpcWeb));
    }

    #[test]
    fn lists_what_is_accepted() {
        let grpc_only = Enabled::from_list(&[Protocol::Grpc]);
        assert_eq!(grpc_only.accepted_content_types(), "application/grpc, application/grpc+proto");
        assert!(!grpc_only.needs_http1());
    }
}

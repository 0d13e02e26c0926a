# ConnectService image: connect-server (the entrypoint) and connect-client.
#
#   docker build -t connect-service:0.1.0 .
#   docker run --rm -p 50051:50051 connect-service:0.1.0
#
# Stage 1 builds release binaries; stage 2 is a slim Debian with only the two
# binaries and CA certificates, running as an unprivileged user.

# The toolchain this project is built and tested with.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Manifests first, so the dependency download is cached across source edits.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY proto proto
COPY connect-proto connect-proto
COPY connect-server connect-server
COPY connect-client connect-client
COPY integration-tests integration-tests
RUN cargo fetch --locked
RUN cargo build --release --locked -p connect-server -p connect-client \
    && cp target/release/connect-server target/release/connect-client /usr/local/bin/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 connect \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin connect
COPY --from=build /usr/local/bin/connect-server /usr/local/bin/connect-client /usr/local/bin/
USER 10001:10001
# gRPC, and Prometheus metrics (with --metrics-addr 0.0.0.0:9464).
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/connect-server"]
CMD ["--addr", "[::]:50051"]

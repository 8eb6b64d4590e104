# syntax=docker/dockerfile:1
# tollgate: multi-stage build, small non-root runtime image.
#   docker build -t tollgate .
#   docker run -p 8000:8000 -e OPENAI_API_KEY -e TOLLGATE_CLIENT_KEY \
#     -v $PWD/conf/examples/openai.toml:/etc/tollgate/tollgate.toml:ro tollgate

FROM rust:1.94-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN cargo build --release --locked -p tollgate -p tollgate-mock \
    && strip target/release/tollgate target/release/tollgate-mock

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home tollgate
COPY --from=build /src/target/release/tollgate /usr/local/bin/tollgate
COPY --from=build /src/target/release/tollgate-mock /usr/local/bin/tollgate-mock
COPY deploy/tollgate.toml /etc/tollgate/tollgate.toml
USER 10001
EXPOSE 8000 8100
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["tollgate", "health", "--admin", "127.0.0.1:8100"]
ENTRYPOINT ["tollgate"]
CMD ["run", "-c", "/etc/tollgate/tollgate.toml"]

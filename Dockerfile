# Multi-stage build of dccgw. The final image runs `dccgw serve` with a configuration mounted at
# /etc/dccgw/dccgw.toml (certificates and users.csv beside it; see README.md).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin dccgw

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/dccgw dccgw
COPY --from=build /src/target/release/dccgw /usr/local/bin/dccgw
USER dccgw
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/dccgw"]
CMD ["serve", "--config", "/etc/dccgw/dccgw.toml"]

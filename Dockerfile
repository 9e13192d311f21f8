# Multi-stage build of dccgw. The final image runs `dccgw serve` with a configuration mounted at
# /etc/dccgw/dccgw.toml (deploy/container/dccgw.toml is a starting point; certificates and
# registers beside it), keeps its durable state in the volume /var/lib/dccgw, and reports its
# health from the admin listener's /readyz. `dccgw demo --bind 0.0.0.0` runs in it too:
#   docker run --rm -p 8443:8443 -p 9090:9090 -p 8444:8444 IMAGE \
#     demo --bind 0.0.0.0 --certs /var/lib/dccgw/certs --dir /var/lib/dccgw/demo
FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, against placeholder sources: this layer is rebuilt only when a manifest or
# the lock file changes, not on every source change.
COPY Cargo.toml Cargo.lock ./
COPY load-tests/Cargo.toml load-tests/Cargo.toml
RUN mkdir -p src load-tests/src benches \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > load-tests/src/main.rs && touch load-tests/src/lib.rs \
    && for b in xmldsig registry audit delivery fanout; do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked --bin dccgw \
    && rm -rf src load-tests/src benches
COPY . .
# The placeholders' build outputs are older than the real sources, which cargo then rebuilds.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin dccgw

FROM debian:bookworm-slim
# curl is for the health check only. Packages follow the base image's Debian release (its
# security updates included) rather than pinned versions, which that release drops.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 dccgw \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/dccgw dccgw \
    && mkdir -p /var/lib/dccgw /etc/dccgw \
    && chown dccgw:dccgw /var/lib/dccgw
COPY --from=build /src/target/release/dccgw /usr/local/bin/dccgw
COPY deploy/container/dccgw.toml /etc/dccgw/dccgw.toml.example
USER 10001:10001
WORKDIR /var/lib/dccgw
VOLUME ["/var/lib/dccgw"]
EXPOSE 8443 9090
# Ready once the registers are loaded and the listeners serve; a start with 30 million devices
# takes about 30 s, hence the start period.
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
    CMD ["curl", "--fail", "--silent", "--show-error", "--max-time", "2", "http://127.0.0.1:9090/readyz"]
ENTRYPOINT ["/usr/local/bin/dccgw"]
CMD ["serve", "--config", "/etc/dccgw/dccgw.toml"]

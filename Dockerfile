# syntax=docker/dockerfile:1

# ---- builder ---------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /app

# Dependency layer: build every crate in Cargo.lock against stub sources, so that
# changing only our own code reuses this layer.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/tenant_scope.rs \
    && echo 'fn main() {}' > benches/permission_check.rs \
    && cargo build --release --locked --bin tenantry \
    && rm -rf src benches

COPY src ./src
# Embedded in the binary by sqlx::migrate!, so only the builder needs them.
COPY migrations ./migrations
COPY benches ./benches
# COPY keeps the context's mtimes, which can be older than the stubs: touch so that
# cargo rebuilds our crate instead of reusing the stub build.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin tenantry \
    && strip target/release/tenantry

# ---- runtime ---------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# curl is for the health checks in docker-compose.yml (the same image also runs the
# worker and migrate commands, which serve no HTTP, so the image has no HEALTHCHECK).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tenantry \
    && useradd --system --uid 10001 --gid tenantry --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin tenantry \
    && mkdir -p /app/data \
    && chown tenantry:tenantry /app/data

WORKDIR /app
COPY --from=builder /app/target/release/tenantry /usr/local/bin/tenantry

ENV BIND_ADDR=0.0.0.0:8000 \
    APP_ENV=production \
    LOG_FORMAT=json \
    STORAGE_DIR=/app/data/files

USER 10001:10001
EXPOSE 8000

ENTRYPOINT ["/usr/local/bin/tenantry"]
CMD ["serve"]

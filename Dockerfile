# syntax=docker/dockerfile:1
#
# Kirana in one image: the `kirana` binary and the ten shop plugins (nine in Rust,
# promotions in Python) with the storefront's pages, built from this repository. Build
# from the repository root:
#
#   docker build -t kirana:0.1.0 .
#
# Run it with PostgreSQL (and Redis) and your own secrets: see docs/deploy.md.
# `kirana serve` refuses to start without KIRANA_ADMIN_OPERATOR_TOKEN,
# KIRANA_ADMIN_PASSWORD, KIRANA_PAYMENTS_KEY_SECRET and KIRANA_PAYMENTS_WEBHOOK_SECRET.

# ---- build: the host in release, the plugins to wasm32-wasip2 ----------------------
# The toolchain the workspace asks for (Cargo.toml: rust-version = "1.95").
FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
# The cargo registry and target directory are build caches, so the outputs are copied
# out of the target directory in the same step. Migrations, the default config and the
# plugin template are compiled into the binary; only the .wasm files travel beside it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target wasm32-wasip2 \
      -p auth -p catalog -p cart -p orders -p payments -p delivery -p notifications -p analytics -p storefront \
 && cargo build --release --locked -p kirana \
 && mkdir -p /out/plugins /out/data \
 && cp target/release/kirana /out/kirana \
 && cp target/wasm32-wasip2/release/auth.wasm target/wasm32-wasip2/release/catalog.wasm \
       target/wasm32-wasip2/release/cart.wasm target/wasm32-wasip2/release/orders.wasm \
       target/wasm32-wasip2/release/payments.wasm target/wasm32-wasip2/release/delivery.wasm \
       target/wasm32-wasip2/release/notifications.wasm target/wasm32-wasip2/release/analytics.wasm \
       target/wasm32-wasip2/release/storefront.wasm \
       /out/plugins/

# ---- build-python: the Python plugins, with componentize-py from PyPI -----------------
# componentize-py's wheel carries everything it needs (CPython for wasm32-wasip2 and its
# own component tooling); scripts/build-python writes NAME.wasm like cargo does.
FROM python:3.11-slim-bookworm AS build-python
RUN pip install --no-cache-dir componentize-py==0.25.1
WORKDIR /src
COPY wit/ wit/
COPY plugin-sdk-python/ plugin-sdk-python/
COPY plugins/promotions/ plugins/promotions/
COPY scripts/build-python scripts/build-python
RUN ./scripts/build-python promotions \
 && mkdir -p /out \
 && cp target/wasm32-wasip2/release/promotions.wasm /out/promotions.wasm

# ---- runtime: glibc, the binary, the plugins ----------------------------------------
# bookworm-slim: the same glibc the build stage linked against. The binary needs only
# libc, libm and libgcc_s (SQLite is bundled, TLS is rustls with its own roots), and
# coreutils' `sleep` serves the Kubernetes preStop hook.
FROM debian:bookworm-slim
COPY --from=build /out/kirana /usr/local/bin/kirana
COPY --from=build /out/plugins/ /app/plugins/
COPY --from=build-python /out/promotions.wasm /app/plugins/promotions.wasm
# The storefront's pages, bundled with storefront.wasm at start: the default
# configuration names them relative to the working directory (/app).
COPY plugins/storefront/assets/ /app/plugins/storefront/assets/
# data_dir: the compile cache (and SQLite files when no database_url is set). The only
# directory the process writes; mount a volume (or an emptyDir) here.
COPY --from=build --chown=10001:10001 /out/data/ /app/data/
WORKDIR /app
# Where this image keeps things. The environment wins over any config file, so these
# hold whatever file is mounted; a deployment overrides them (compose sets KIRANA_LISTEN
# per replica). A config file is optional: mount one and set KIRANA_CONFIG to its path
# (compose and the Kubernetes manifests use /etc/kirana/kirana.toml).
ENV KIRANA_PLUGIN_DIR=/app/plugins \
    KIRANA_DATA_DIR=/app/data \
    KIRANA_LISTEN=0.0.0.0:8080 \
    KIRANA_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8080
# /health answers 200 while the process serves (liveness; /ready also checks the
# database and the plugins). Plain bash, so the image needs no HTTP client; the port
# follows KIRANA_LISTEN.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${KIRANA_LISTEN##*:} && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["kirana", "serve"]

# syntax=docker/dockerfile:1
# aupd image: a stripped release binary on distroless, running as non-root,
# with the policy baked in at /etc/aupd/policies.
#
#   docker build -t aupd:0.1.0 .
#   docker run --rm -p 8080:8080 -e AUPD__AUTH__ADMIN_TOKEN=... aupd:0.1.0
#
# The builder is Debian 12 (bookworm) like the distroless runtime, so the
# binary links against the same glibc. Its Rust version matches the toolchain
# CI builds with; the locked dependencies need at least 1.89 (actix-web).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src

# Dependencies first: this layer is rebuilt only when Cargo.toml or
# Cargo.lock change, not on every source edit.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src

COPY src ./src
# Stripped, without the line tables the release profile keeps for local
# profiling. touch: COPY keeps the context's mtimes, which may be older than
# the dummy build's.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_PROFILE_RELEASE_DEBUG=false
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && mkdir -p /out/var/lib/aupd \
 && cp target/release/aupd /out/aupd

# cc: glibc and libgcc for a dynamically linked Rust binary; nonroot: uid and
# gid 65532, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="aupd" \
      org.opencontainers.image.description="Acceptable-use policy enforcement for a cloud provider's tenants" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/aupd /usr/local/bin/aupd
COPY policies /etc/aupd/policies
# The store directory, writable by the non-root user; mount a volume here.
COPY --from=builder --chown=65532:65532 /out/var/lib/aupd /var/lib/aupd

# Listen on every interface (the binary's default is loopback). The store
# lives in a subdirectory so a volume's own entries (lost+found) stay out of it.
# Two malloc arenas: with glibc's default (eight per core) resident memory
# kept growing under steady load; with two (and an 8 MiB store cache) it
# levelled off (docs/configuration.md).
ENV AUPD__SERVER__BIND=0.0.0.0:8080 \
    AUPD__STORE__PATH=/var/lib/aupd/store \
    AUPD__POLICY__DIR=/etc/aupd/policies \
    AUPD__LOG__FORMAT=json \
    MALLOC_ARENA_MAX=2

EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/aupd"]
CMD ["serve"]

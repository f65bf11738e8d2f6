# syntax=docker/dockerfile:1.7
# The baton controller image used by charts/baton and config/manager.
#
#   docker build -t ghcr.io/baton-dev/baton:0.1.0 .
#
# Stage 1 builds the `baton` binary (TLS is rustls + ring: no OpenSSL needed at run time);
# stage 2 is distroless "cc" (glibc, libgcc, CA certificates, no shell) running as the
# distroless nonroot user 65532.

ARG RUST_VERSION=1.89

FROM rust:${RUST_VERSION}-bookworm AS builder
# The commit in baton_build_info (.git is not in the context):
#   docker build --build-arg BATON_COMMIT=$(git rev-parse --short=12 HEAD) .
ARG BATON_COMMIT=unknown
ENV BATON_COMMIT=${BATON_COMMIT}
WORKDIR /src
# The whole workspace (sim/ is a member); .dockerignore keeps target/, .git/, the chart and the
# manifests out of the context. Without default features: no `baton demo`, and the simulator it
# embeds is not built into the image. The `image` profile is release with fat LTO, one codegen
# unit and optimised for size (a smaller binary, less of it resident).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --profile image --locked --no-default-features --bin baton \
 && install -D -m 0755 target/image/baton /out/baton

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="baton" \
      org.opencontainers.image.description="Kubernetes operator for batched rollouts and zero-duplicate listener handover" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/baton /baton
USER 65532:65532
# /metrics, /healthz and /readyz (BATON_METRICS_ADDR, default 0.0.0.0:8080).
EXPOSE 8080
ENTRYPOINT ["/baton", "controller"]

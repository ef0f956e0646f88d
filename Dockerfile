# syntax=docker/dockerfile:1
#
# The eddy worker image: a static Go binary on distroless, running as a
# non-root user.
#
#   docker build -t eddy-worker --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm -v $PWD/pipeline.yaml:/etc/eddy/pipeline.yaml:ro eddy-worker
#
# The pipeline is read from /etc/eddy/pipeline.yaml (mount it, or pass
# "run -c <file>"); health and metrics are served on :9100 (/healthz,
# /readyz, /metrics). Multi-platform builds cross-compile in the builder
# (docker buildx build --platform linux/amd64,linux/arm64 .).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/worker ./cmd/worker

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /usr/local/bin/worker
# distroless's nonroot user, by number so that Kubernetes' runAsNonRoot can
# verify it.
USER 65532:65532
ENV EDDY_HTTP_ADDR=:9100
EXPOSE 9100
ENTRYPOINT ["worker"]
CMD ["run", "-c", "/etc/eddy/pipeline.yaml"]

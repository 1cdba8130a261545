# Parley: one static binary in a small non-root image.
#
#   docker build -t parley .
#   docker run -p 8080:8080 -v parley-data:/data \
#     -e PARLEY_API_KEYS=$(openssl rand -hex 24):me \
#     -e OLLAMA_HOST=http://host.docker.internal:11434 parley
#
# docs/deploy.md explains the settings; cmd/parley/deploy_test.go checks
# this file against README.md and render.yaml.

# --- build: exactly the two commands of README.md's "Build and deploy" ---
FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that editing code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/parley ./cmd/parley

# --- run: Alpine, for busybox wget in HEALTHCHECK (the binary has no
# healthcheck command yet, so a distroless image could not check itself) ---
FROM alpine:3.22
# ca-certificates for an https OLLAMA_HOST. A fixed non-root uid/gid (10001)
# owns the data directory; it is created before VOLUME so that a new named
# volume starts with that ownership.
RUN apk add --no-cache ca-certificates \
	&& addgroup -S -g 10001 parley \
	&& adduser -S -D -H -u 10001 -G parley -h /data -s /sbin/nologin parley \
	&& mkdir -p /data \
	&& chown 10001:10001 /data \
	&& chmod 0750 /data
COPY --from=build /out/parley /usr/local/bin/parley

# The embedded NATS server keeps its JetStream files here; on Render the
# persistent disk is mounted at the same path (render.yaml).
ENV PARLEY_DATA_DIR=/data
# No PARLEY_LISTEN: with it unset Parley listens on 0.0.0.0:$PORT, so a
# platform's PORT (Render's) wins over this default.
ENV PORT=8080
# A non-loopback address needs auth: give PARLEY_API_KEYS (key:user,…)
# and/or PARLEY_JWT_SECRET at run time, or Parley refuses to start.
ENV PARLEY_AUTH=token
# Many idle sockets: collect garbage at half the live heap's growth rather
# than the whole (docs/benchmarks.md: 2.5 instead of ~3 KiB per idle
# WebSocket, for a little more CPU).
ENV GOGC=50

VOLUME /data
WORKDIR /data
EXPOSE 8080
USER 10001:10001

# Liveness only (/healthz is 200 while the process serves HTTP); readiness
# (/readyz, NATS and JetStream reachable) is what Render checks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
	CMD wget -qO /dev/null "http://127.0.0.1:${PORT:-8080}/healthz" || exit 1

# parley serve ends cleanly on SIGTERM within PARLEY_SHUTDOWN_TIMEOUT (25s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/parley"]
CMD ["serve"]

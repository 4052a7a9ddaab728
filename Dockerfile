# camgate in a container: built from this repository, run as a non-root user on a slim Debian
# with ffmpeg (transcode profiles), data in a volume, health checked on /health.
#   docker build -t camgate .
#   docker run -p 8080:8080 -p 8554:8554 -e CAMGATE_AUTH_API_KEYS=a-long-random-key -v camgate-data:/var/lib/camgate camgate
# Outside the container camgate answers only with API keys set (protected mode answers
# loopback clients only; the health check below runs inside, on loopback). See docs/compat.md.

FROM rust:1.89-slim-bookworm AS build
# gcc/g++: SQLite and OpenH264 are built from bundled sources; nasm makes OpenH264 fast.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ libc6-dev nasm make pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY bench ./bench
RUN cargo build --release --locked -p camgate \
    && install -m 0755 target/release/camgate /usr/local/bin/camgate

FROM debian:bookworm-slim
# ffmpeg: transcode profiles (`~h264`, [profiles.*]); curl: the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/camgate --shell /usr/sbin/nologin camgate \
    && mkdir -p /var/lib/camgate \
    && chown camgate:camgate /var/lib/camgate
COPY --from=build /usr/local/bin/camgate /usr/local/bin/camgate
USER camgate
WORKDIR /var/lib/camgate
VOLUME ["/var/lib/camgate"]
# The RTSP restream listens on every interface too (its default is this machine only).
ENV CAMGATE_RTSP_LISTEN=0.0.0.0:8554
# HTTP (API, HLS, WHEP, WebSockets, dashboard), RTSP restream, WebRTC media (UDP).
EXPOSE 8080 8554 8189/udp
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["/usr/local/bin/camgate"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/camgate"]

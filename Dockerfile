# hotplugd in a container: built from a clean checkout, run on every node.
#   docker build -t hotplugd .
# Run (README "Container" gives the line with the host's modprobe.d directories):
#   docker run -d --name hotplugd --network host --cap-add SYS_MODULE --cap-add NET_ADMIN ... hotplugd
#
# Base images are pinned by digest. No registry is reachable where this file
# is tested, so the digests are taken as published (node: a pin kept by a
# Renovate/Dependabot bot in public repositories; debian: likewise) and
# scripts/refresh-base-digests.sh replaces both with what the registry serves
# now (docker buildx imagetools, skopeo or crane).

# Build stage: Node 24 and npm (the build needs Node >= 20), on the same
# Debian release as the runtime stage. The package step needs go-md2man
# (the man page) and git (scripts/package.mjs asks for it); the package
# carries its own Node (packaging/runtime.json, from the npm registry).
FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS build
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends go-md2man git \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# File times in the package: the commit's time when given
# (--build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)), else package.json's.
ARG SOURCE_DATE_EPOCH=""
RUN npm ci --no-audit --no-fund \
 && SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(stat -c %Y package.json)}" npm run package

# Runtime stage: the package's /usr (the daemon, its add-ons, Node 24) on
# Debian 12. kmod: a host's modprobe.d `install` commands that call modprobe
# work as on the host. tini: PID 1 reaps the orphans of install commands and
# passes SIGTERM on. The image's own modprobe.d files are removed and every
# modprobe.d directory kmod reads exists, empty: the container reads only the
# host's, mounted over them (a read-only root needs the mount points).
FROM debian:bookworm-slim@sha256:7802002798b0e351323ed2357ae6dc5a8c4d0a05a57e7f4d8f97136151d3d603
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends kmod tini \
 && rm -rf /var/lib/apt/lists/* \
 && find /etc/modprobe.d /usr/lib/modprobe.d -mindepth 1 -delete \
 && mkdir -p /run/modprobe.d /usr/local/lib/modprobe.d /var/cache/hotplugd
COPY --from=build /src/dist/package/root/usr/ /usr/
LABEL org.opencontainers.image.title="hotplugd" \
      org.opencontainers.image.description="A udev-style hotplug daemon: loads the kernel modules of the devices the kernel announces" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim" \
      org.opencontainers.image.base.digest="sha256:7802002798b0e351323ed2357ae6dc5a8c4d0a05a57e7f4d8f97136151d3d603"
ENV NODE_ENV=production UV_THREADPOOL_SIZE=16
# The uevent socket needs the host's network namespace (--network host);
# finit_module needs CAP_SYS_MODULE, SO_RCVBUFFORCE needs CAP_NET_ADMIN.
# The health check asks the daemon's own HTTP server (--metrics-listen, on
# the host's loopback) with bash alone: no Node process per check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9101 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/hotplugd"]
CMD ["run", "--log-format", "json", "--metrics-listen", "127.0.0.1:9101"]

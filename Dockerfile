# hotplugd in a privileged container, from the package tree (what the .deb
# installs, Node runtime included). Build:
#   npm ci && npm run package && docker build -t hotplugd .
# Run (see README "Container"):
#   docker run -d --name hotplugd --network host --cap-add SYS_MODULE --cap-add NET_ADMIN \
#     -v /lib/modules:/lib/modules:ro -v /sys:/sys:ro -v /etc/modprobe.d:/etc/modprobe.d:ro hotplugd
#
# debian:bookworm-slim pinned by digest: the digest published in
# github.com/thepwagner-org/debian-bullseye's Dockerfile (a Renovate-maintained
# pin of debian:bookworm-slim); no registry is reachable where this file was
# written, so refresh it with `docker buildx imagetools inspect debian:bookworm-slim`.
# The carried Node binary needs only glibc and libstdc++, both in this image.
FROM debian:bookworm-slim@sha256:7802002798b0e351323ed2357ae6dc5a8c4d0a05a57e7f4d8f97136151d3d603
COPY dist/package/root/usr/ /usr/
ENV NODE_ENV=production UV_THREADPOOL_SIZE=16
# The uevent socket needs the host's network namespace (--network host);
# finit_module needs CAP_SYS_MODULE, SO_RCVBUFFORCE needs CAP_NET_ADMIN.
ENTRYPOINT ["/usr/bin/hotplugd"]
CMD ["run", "--log-format", "json"]

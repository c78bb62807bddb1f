# hotplugd in a privileged container. Build: docker build -t hotplugd .
# Run (see README "Container"):
#   docker run -d --name hotplugd --network host --cap-add SYS_MODULE --cap-add NET_ADMIN \
#     -v /lib/modules:/lib/modules:ro -v /sys:/sys:ro -v /etc/modprobe.d:/etc/modprobe.d:ro hotplugd

# --- build: compile TypeScript with the dev dependencies ---
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Install scripts are not needed: koffi and netlink ship prebuilt binaries.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# --- runtime: production dependencies only ---
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY proto ./proto
# The uevent socket needs the host's network namespace (--network host);
# finit_module needs CAP_SYS_MODULE, SO_RCVBUFFORCE needs CAP_NET_ADMIN.
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
CMD ["run", "--log-format", "json"]

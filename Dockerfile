# cachegate images: two targets from one recipe (see docs/deploy.md).
#   docker build --target service -t cachegate-service .   # `cachegate serve` on 0.0.0.0:9170
#   docker build --target helper  -t cachegate-helper  .   # the `cachegate` CLI for CI jobs
#
# Debian, not Alpine: zstd-napi (a native module) ships no prebuilt binary in its npm package and is
# compiled here, so the build stage and the runtime stage must share one C library; the build stage
# is the full Debian image (python3, make, g++), the runtime stage its slim variant of the same release.
# NODE_VERSION is the Node of the `node` devDependency in package-lock.json (test/unit/deploy.test.ts
# checks that they agree). To pin by digest as well, see "Digest pinning" in docs/deploy.md.
ARG NODE_VERSION=24.21.0

# Production dependencies only; zstd-napi is compiled from source against the headers that come with
# this image's Node (no download from GitHub or nodejs.org). npm ci also runs the root install script,
# which builds native/ (the libdeflate addon for zip, linked statically: the runtime image needs no
# libdeflate) and native/sigv4 (the front door's SigV4 hashing, on the Node binary's own SHA-256)
# when scripts/build-native.sh is there; without them zip creation and extraction would run on
# node:zlib, several times slower, and signatures on node:crypto, so both stages check that they load.
FROM node:${NODE_VERSION}-trixie AS deps
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends libdeflate-dev \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_build_from_source=zstd-napi \
    npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
COPY scripts/build-native.sh ./scripts/
COPY native/binding.gyp native/deflate.c ./native/
COPY native/sigv4/binding.gyp native/sigv4/sigv4.c native/sigv4/malloc.c native/sigv4/accept.c ./native/sigv4/
RUN npm ci --omit=dev --no-audit --no-fund \
 && node -e "require('zstd-napi/binding')" \
 && node -e "const a = require('./native/build/Release/cachegate_deflate.node'); for (const f of ['packFiles', 'writeFiles', 'inflateFile']) if (typeof a[f] !== 'function') throw new Error('native addon lacks ' + f)" \
 && node -e "const a = require('./native/sigv4/build/Release/cachegate_sigv4.node'); if (typeof a.signature !== 'function') throw new Error('native SigV4 addon lacks signature')"

# What both images share: Node from the base image, the sources (run through Node's type stripping,
# no build step) and the production node_modules, all owned by root and read-only to the user below.
FROM node:${NODE_VERSION}-trixie-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/native/build/Release/cachegate_deflate.node ./native/build/Release/
COPY --from=deps /app/native/sigv4/build/Release/cachegate_sigv4.node ./native/sigv4/build/Release/
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY adapters ./adapters
RUN chmod 0755 bin/cachegate.js \
 && ln -s /app/bin/cachegate.js /usr/local/bin/cachegate \
 && cachegate --version \
 && node -e "require('zstd-napi/binding')" \
 && node --input-type=module -e "const { nativeDeflate } = await import('/app/src/archive/native-deflate.ts'); if (!nativeDeflate()) throw new Error('the native deflate addon does not load')" \
 && node --input-type=module -e "const { nativeSigV4 } = await import('/app/src/sign/native-sigv4.ts'); if (!nativeSigV4) throw new Error('the native SigV4 addon does not load')"

# The service. Give it a configuration (CACHEGATE_CONFIG or --config, or the CACHE_* variables):
# it refuses to listen on 0.0.0.0 without a runner or API token.
FROM runtime AS service
ENV CACHEGATE_LISTEN=0.0.0.0:9170 \
    CACHEGATE_DATA_DIR=/var/lib/cachegate
RUN mkdir -p /var/lib/cachegate && chown 1000:1000 /var/lib/cachegate
VOLUME /var/lib/cachegate
# 1000 is the base image's `node` user; numeric so that Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 9170
# No curl in the slim image: Node's fetch, on the port of CACHEGATE_LISTEN.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const port = (process.env.CACHEGATE_LISTEN || ':9170').split(':').pop(); fetch('http://127.0.0.1:' + port + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["cachegate"]
CMD ["serve"]

# The helper for CI jobs: `cachegate cache-archiver` / `cache-extractor` on PATH, with /bin/sh
# (GitLab runs a job's script through a shell) and git (`--untracked` lists files with git ls-files).
# A job's checkout usually belongs to another user than this one: safe.directory lets git read it.
FROM runtime AS helper
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory '*' \
 && install -d -o 1000 -g 1000 -m 0700 /opt/cachegate-compile-cache
# Node's compile cache (stripped TypeScript and compiled code), filled here by the user the helper
# runs as (Node names the cache's directory after the uid): every job's container starts with it, so
# no command loads the TypeScript loader, in the main thread or in a worker (docs/archive.md,
# "Memory bound": ~25 MB less peak RSS). Another uid simply misses it.
ENV NODE_COMPILE_CACHE=/opt/cachegate-compile-cache
USER 1000:1000
RUN set -e; w="$(mktemp -d)"; cd "$w"; mkdir t x; head -c 6000000 /usr/local/bin/node > t/big; echo small > t/small; \
    cachegate cache-archiver --file a.zip --path t >/dev/null; \
    CACHE_COMPRESSION_FORMAT=tarzstd cachegate cache-archiver --file a.tar.zst --path t >/dev/null; \
    (cd x && cachegate cache-extractor --file ../a.zip >/dev/null && cachegate cache-extractor --file ../a.tar.zst >/dev/null); \
    (cd x && cachegate cache-extractor --file d.zip --url http://127.0.0.1:9/ >/dev/null 2>&1 || true); \
    cd /; rm -rf "$w"
# GitLab runs the script in the job's checkout; with `docker run`, mount your files here.
WORKDIR /builds
ENTRYPOINT []
CMD ["cachegate", "--help"]

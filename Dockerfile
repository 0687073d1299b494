# meshprobe's container image: built with Swift's static standard library, run on Debian slim with the C libraries it
# links (libssl3, libnghttp2-14; libstdc++6 and zlib1g), as a non-root user, on a read-only root filesystem.
#
#   docker build -t REGISTRY/meshprobe:TAG .                                  # the runtime image (the last stage)
#   docker build --target flagger-tester -t REGISTRY/meshprobe-flagger-tester:TAG .   # Flagger's webhook tester
#
# Then point the manifests at it: `kustomize edit set image meshprobe=REGISTRY/meshprobe:TAG` (docs/kubernetes.md).
# This image is not built in CI (no Docker engine there); the static build it runs is: .ci/run builds
# scripts/build-release (`swift build -c release --static-swift-stdlib`, run-time exclusivity checks off) and checks
# that the binary needs nothing beyond these packages.
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim
# Flagger's loadtester, for the flagger-tester target: use the version that matches your Flagger.
ARG FLAGGER_LOADTESTER_IMAGE=ghcr.io/fluxcd/flagger-loadtester:0.34.0

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev libnghttp2-dev zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY scripts/build-release ./scripts/
RUN scripts/build-release \
 && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/meshprobe" /out/meshprobe
# Shell completions (bash, zsh, fish) and the man page, generated from the binary just built, under /out/extras/usr
# (scripts/install-extras; the man page's generator, swift-argument-parser's generate-manual, is built here in debug).
# The committed page is copied only for its date: the text is the binary's.
COPY scripts/gen-man scripts/install-extras ./scripts/
COPY docs/man ./docs/man
RUN MESHPROBE=/out/meshprobe scripts/install-extras /out/extras

FROM ${DEBIAN_IMAGE} AS runtime-base
# The shared libraries the static build still needs (the Swift runtime and Foundation are inside the binary), and
# the system trust store for an https Pushgateway (--pushgateway-ca defaults to it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 libnghttp2-14 libstdc++6 zlib1g ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 meshprobe \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin meshprobe
COPY --from=build /out/meshprobe /usr/local/bin/meshprobe
# /usr/share/bash-completion/completions/meshprobe, /usr/share/zsh/vendor-completions/_meshprobe,
# /usr/share/fish/vendor_completions.d/meshprobe.fish, /usr/share/man/man1/meshprobe.1.gz (the slim image has no
# shell completion or man program: they are there for images built on this one, and to copy out).
COPY --from=build /out/extras/usr/share/ /usr/share/
# Nothing is written outside /tmp (reports; mount an emptyDir there with readOnlyRootFilesystem).
WORKDIR /tmp
USER 65532:65532

FROM ${FLAGGER_LOADTESTER_IMAGE} AS flagger-loadtester

# Flagger's webhook tester with meshprobe beside it: the Canary's webhook runs `meshprobe verify` through it
# (manifests/integrations/flagger). The loadtester is a static Go binary; its `bash` tasks run with Debian's bash.
FROM runtime-base AS flagger-tester
COPY --from=flagger-loadtester /home/app/loadtester /usr/local/bin/flagger-loadtester
ENTRYPOINT ["/usr/local/bin/flagger-loadtester"]

FROM runtime-base AS runtime
ENTRYPOINT ["/usr/local/bin/meshprobe"]
CMD ["--help"]

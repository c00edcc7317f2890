# vault-mcp as a Hugging Face Space: one container, port 7860, data in the persistent /data.
# The build step is scripts/build-release, the same script the test suite (and so CI) runs.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/build-release

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 user \
 && mkdir -p /data && chown user:user /data
COPY --from=build /src/target/release/vault-mcp /usr/local/bin/vault-mcp
# Spaces run the container as uid 1000 and expose port 7860; JWT_SECRET_KEY and the OAuth
# variables come from the Space's secrets.
ENV MODE=space \
    HOST=0.0.0.0 \
    PORT=7860 \
    DATA_DIR=/data
USER user
EXPOSE 7860
CMD ["vault-mcp", "serve"]

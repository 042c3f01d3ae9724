# betbot: the bot in a slim image, run as a non-root user (docs/operations.md).
#   docker build -t betbot .
#   docker run -e BOT_WEB__ENABLED=true -e BOT_WEB__TOKEN=... -p 127.0.0.1:8080:8080 -v betbot:/data betbot
FROM python:3.11-slim

RUN useradd --create-home --uid 10001 bot && mkdir /data && chown bot /data
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir -c requirements.lock . && rm -rf /root/.cache
COPY config.yaml ./

USER bot
# state (ledger, logs, recordings) on a volume; the web API listens on every interface of the
# container (publish it on the host's loopback, as above); its token comes from the environment
ENV BOT_STATE_DIR=/data BOT_WEB__HOST=0.0.0.0 BOT_WEB__PORT=8080 PYTHONUNBUFFERED=1
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health/live', timeout=4).status != 200)"
ENTRYPOINT ["bot"]
CMD ["run", "--config", "/app/config.yaml"]

# lokiarrow serving Loki's API on :3100, its data (WAL, chunks, index) in the /data volume.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lokiarrow ./lokiarrow
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 --no-create-home lokiarrow \
 && mkdir /data && chown lokiarrow /data
USER lokiarrow
EXPOSE 3100 9095
VOLUME /data
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=12 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3100/ready', timeout=2)"]
ENTRYPOINT ["lokiarrow", "serve", "-common.path-prefix=/data", "-server.http-listen-port=3100"]

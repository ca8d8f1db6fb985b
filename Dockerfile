FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lokiarrow ./lokiarrow
RUN pip install --no-cache-dir .
EXPOSE 3100
VOLUME /data
ENTRYPOINT ["lokiarrow", "serve", "-common.path-prefix=/data", "-server.http-listen-port=3100"]

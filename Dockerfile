# dsarbot service image: `docker build -t dsarbot .` then
#   docker run -p 8080:8080 -v dsarbot-data:/var/lib/dsarbot -e DSARBOT_SERVICE__HOST=0.0.0.0 dsarbot
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --home /var/lib/dsarbot --shell /usr/sbin/nologin dsarbot
WORKDIR /opt/dsarbot
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY integrations ./integrations
COPY playbooks ./playbooks
COPY config ./config
RUN pip install --no-cache-dir .

ENV DSARBOT_SERVICE__DATA_DIR=/var/lib/dsarbot \
    DSARBOT_SERVICE__HOST=0.0.0.0 \
    DSARBOT_SERVICE__PORT=8080 \
    DSARBOT_PLAYBOOKS__REGISTER=/opt/dsarbot/config/register.yaml \
    DSARBOT_PLAYBOOKS__DIRECTORY=/opt/dsarbot/playbooks
VOLUME ["/var/lib/dsarbot"]
RUN mkdir -p /var/lib/dsarbot && chown dsarbot /var/lib/dsarbot
USER dsarbot
EXPOSE 8080
HEALTHCHECK CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)" || exit 1
CMD ["dsarbot", "serve"]

# dsarbot service image. Build: `docker build -t dsarbot .`; run (see docker-compose.example.yml):
#   docker run -p 8080:8080 -v dsarbot-data:/var/lib/dsarbot -v ./config:/etc/dsarbot:ro \
#     -e DSARBOT_CONFIG=/etc/dsarbot/dsarbot.toml -e DSARBOT_SERVICE__BASE_URL=https://privacy.shop.example dsarbot
FROM python:3.11-slim-bookworm

# WeasyPrint (the PDF answers) needs Pango and HarfBuzz (its subsetter keeps PDFs small); the letters
# ask for Liberation Sans, then DejaVu Sans.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 \
      fonts-liberation fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --home /var/lib/dsarbot --shell /usr/sbin/nologin dsarbot
WORKDIR /opt/dsarbot
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY integrations ./integrations
COPY playbooks ./playbooks
# the `postgres` extra: the PostgreSQL store for several instances, and PostgreSQL shop databases
RUN pip install --no-cache-dir ".[postgres]"
# after the install, so that editing a register does not rebuild the Python layer
COPY config ./config

# Only what the container itself dictates is set here (environment variables win over the TOML
# file); everything else comes from the file named by DSARBOT_CONFIG and from DSARBOT_<SECTION>__<KEY>
# (secrets included). Relative paths in the config (config/register.yaml, config/redaction.yaml,
# playbooks) resolve from the working directory /opt/dsarbot, where the shipped ones are.
ENV DSARBOT_SERVICE__DATA_DIR=/var/lib/dsarbot \
    DSARBOT_SERVICE__HOST=0.0.0.0 \
    DSARBOT_SERVICE__PORT=8080 \
    PYTHONUNBUFFERED=1
# the data dir exists and belongs to the service user BEFORE it becomes a volume (changes made to a
# volume's path after VOLUME are discarded)
RUN mkdir -p /var/lib/dsarbot && chown dsarbot /var/lib/dsarbot && chmod 700 /var/lib/dsarbot
VOLUME ["/var/lib/dsarbot"]
USER dsarbot
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)" || exit 1
CMD ["dsarbot", "serve"]

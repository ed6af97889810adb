# licence-hub runtime image.
# Build: docker build -t licence-hub .    Run: see docker-compose.yml
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# poppler-utils: PDF rendering/inspection; qpdf: PDF linearisation/signature
# handling; libnss3-tools: certutil for the seal trust store; fonts-noto-cjk:
# CJK glyphs for licence rendering; curl: container healthchecks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        poppler-utils \
        qpdf \
        libnss3-tools \
        fonts-noto-cjk \
        curl \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 hub \
    && useradd --system --uid 10001 --gid hub --home-dir /srv/hub --no-create-home --shell /usr/sbin/nologin hub

COPY . /tmp/src
RUN pip install --no-cache-dir /tmp/src \
    && rm -rf /tmp/src

# Created here (owned by hub) so a named volume mounted on it inherits the ownership.
RUN mkdir -p /srv/hub/var \
    && chown -R hub:hub /srv/hub

WORKDIR /srv/hub
ENV HUB_DATA_DIR=/srv/hub/var

USER hub:hub

EXPOSE 8000

CMD ["licence-hub", "serve", "--host", "0.0.0.0", "--port", "8000"]

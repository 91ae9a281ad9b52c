# The webhook receiver, `circleback serve`, as a container image.
#
#   docker build -t circleback-serve .
#   docker run -p 8080:8080 -e CIRCLEBACK_TOKEN -e CIRCLEBACK_WEBHOOK_SECRETS \
#     -e CIRCLEBACK_ALLOW_PROJECTS='gh/acme/*' circleback-serve
#
# Stateless: run as many replicas as you like behind one URL. Listens on $PORT (8080 by
# default; Cloud Run and similar platforms set it). See docs/webhooks.md.

# -- build the wheel (the orb and examples travel inside it) ------------------------------
FROM python:3.12-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2
COPY pyproject.toml README.md LICENSE ./
COPY circleback ./circleback
COPY orbs/circleback/src ./orbs/circleback/src
COPY examples ./examples
RUN python -m build --wheel --outdir /dist

# -- the receiver ------------------------------------------------------------------------
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080
COPY --from=build /dist /dist
RUN WHEEL="$(ls /dist/circleback-*.whl)" \
    && pip install --no-cache-dir "${WHEEL}[serve]" \
    && rm -rf /dist \
    && useradd --system --no-create-home --uid 10001 circleback
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8080')}/healthz\", timeout=2)"]
ENTRYPOINT ["circleback", "--log-format", "json", "serve", "--host", "0.0.0.0"]

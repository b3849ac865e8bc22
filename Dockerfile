FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml uv.lock README.md ./
COPY domain domain
COPY application application
COPY projections projections
COPY api api
COPY workers workers
RUN uv sync --frozen --no-dev
ENV PATH=/app/.venv/bin:$PATH
USER nobody
EXPOSE 8000
CMD ["pms", "api"]

# Collegium node image: Python 3.11, the package, committed contract artifacts.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY node ./node
COPY migrations ./migrations
COPY contracts/build ./contracts/build
COPY frontend/dist ./frontend/dist
RUN pip install --no-cache-dir -e .
ENV COLLEGIUM_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)" || exit 1
ENTRYPOINT ["collegium"]
CMD ["up", "--host", "0.0.0.0", "--port", "8000"]

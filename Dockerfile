# The platform's own image, for running it on a real Docker host with docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
ENV PYTHONUNBUFFERED=1 PYTHONPATH=/app
CMD ["gunicorn", "web:create_app()", "--bind", "0.0.0.0:8000", "-k", "gthread", "--threads", "48", "--timeout", "130", "--no-control-socket"]

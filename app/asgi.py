"""The ASGI entry point uvicorn workers import."""

from app.main import create_app

app = create_app()

"""The web app: FastAPI app factory, REST API under /api/v1, auth, and the web pages."""

from tagtrain.server.app import create_app

__all__ = ["create_app"]

"""tagtrain: self-hosted, no-code image classification."""

__version__ = "0.1.0"

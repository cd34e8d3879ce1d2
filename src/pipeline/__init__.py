"""Shared package for the serverless data pipeline: events, routing, readers, validation, loaders, handlers."""

__version__ = "0.1.0"

"""The serverless data pipeline's shared package: events, routing, readers, validation, loaders, handlers."""

__version__ = "0.1.0"

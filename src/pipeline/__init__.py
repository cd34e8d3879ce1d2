"""The serverless data pipeline's shared package: events, datasets, readers, validation, loaders, handlers."""

__version__ = "0.1.0"

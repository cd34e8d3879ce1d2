"""Record schemas, one pydantic model per dataset that is loaded into the database."""

from pydantic import BaseModel

from pipeline.schemas.users import UserRecord

SCHEMAS: dict[str, type[BaseModel]] = {"users": UserRecord}
"""Schema by dataset name, for a registry that names its schema in configuration."""

__all__ = ["SCHEMAS", "UserRecord"]

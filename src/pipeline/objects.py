"""The unit of work: one version of one object in the landing bucket, as an S3 event describes it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

LINEAGE_FIELDS = (
    "source_bucket",
    "source_key",
    "source_version",
    "source_event_time",
    "source_order",
    "uploaded_by",
)
"""The names :meth:`ObjectRef.lineage` returns, in that order (``uploaded_by`` only when it is known)."""

MAX_KEY_BYTES = 1024
"""S3's limit on an object key, in UTF-8 bytes: a longer one is refused (400 KeyTooLongError)."""


def fit_utf8(text: str, max_bytes: int) -> str:
    """The longest start of ``text`` whose UTF-8 encoding fits ``max_bytes``, never cutting a character."""
    return text.encode()[: max(max_bytes, 0)].decode(errors="ignore")


def digest(text: str, length: int = 32) -> str:
    """A hex SHA-256 of ``text`` (its first ``length`` digits): stands in for a value too long to repeat."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A landed object version and the S3 event that announced it (keys are already URL-decoded)."""

    bucket: str
    key: str
    event_time: datetime
    event_name: str = "ObjectCreated:Put"
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    sequencer: str | None = None
    # Facts of the landed version itself, not of its event: read once from its user metadata
    # (pipeline.sources.read_uploader) and carried with the reference, so parts need not read them again.
    # uploaded_by is None when the file has no valid ``uploaded-by``; lineage_notes say why one was dropped.
    uploaded_by: str | None = None
    lineage_notes: tuple[str, ...] = ()

    @property
    def file_name(self) -> str:
        """The last path segment of the key (what a data lake object is named after)."""
        return self.key.rsplit("/", 1)[-1]

    @property
    def version_label(self) -> str:
        """The version id, or ``null`` as S3 itself names the version of an unversioned object."""
        return self.version_id or "null"

    @property
    def event_time_iso(self) -> str:
        """Event time in a fixed-width UTC form, so that string order is time order."""
        return self.event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def lineage(self) -> dict[str, str]:
        """Where a record, a reject or a lake copy came from: the one definition every writer records.

        Table items carry these as attributes, rejects and manifests as fields, lake copies as S3 metadata.
        ``uploaded_by`` is left out, not empty, when it is not known: DynamoDB items then simply lack it.
        """
        lineage = {
            "source_bucket": self.bucket,
            "source_key": self.key,
            "source_version": self.version_label,
            "source_event_time": self.event_time_iso,
            "source_order": self.order_token,
        }
        if self.uploaded_by is not None:
            lineage["uploaded_by"] = self.uploaded_by
        return lineage

    @property
    def order_token(self) -> str:
        """Total order between object versions: event time first, then key and version to break ties.

        The database keeps, for each record key, the version whose token is greatest: the later S3 event
        time wins, whatever order the messages arrive in; equal times fall back to a stable, arbitrary order.
        """
        return f"{self.event_time_iso}|{self.key}|{self.version_label}"

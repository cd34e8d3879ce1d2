"""Schema contracts: how far a dataset's files may stray from its schema, and what was decided for one file.

A :class:`Contract` is declared per dataset in the registry (:mod:`pipeline.datasets`). It says what to do
with a column (CSV) or object key (JSON Lines, JSON array) the schema does not know:

- ``reject`` (the default): as before contracts existed. A CSV file whose header names an unknown column is
  refused as a whole (quarantined, its manifest names the columns); a JSON record with an unknown key is
  rejected alone, with the reason ``"<key>: unknown field"``.
- ``ignore``: unknown columns are dropped; the records load without them.
- ``keep``: unknown columns are carried on the validated record, in ``ValidatedBatch.extras`` (name -> text,
  for the data lake's curated zone), and never into the table item's typed attributes.

Whatever the policy, names are matched as real exports write them: case-insensitively, with surrounding
whitespace (also no-break spaces) and byte-order marks ignored, so ``" EMAIL "`` and ``"\\ufeffUserId"``
are the schema's ``email`` and ``UserId``.

Every decision about a file is recorded in a :class:`ContractReport` and shown in its manifest
(``contract_decisions``), e.g. ``"ignored columns: signup_source"``. A big file's parts each report theirs;
reports merge (sets of names), so the file's manifest shows each decision once.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Literal, get_args

UnknownColumns = Literal["reject", "ignore", "keep"]
UNKNOWN_COLUMN_POLICIES: tuple[str, ...] = get_args(UnknownColumns)
MAX_NAMES = 20
"""Names kept per kind of decision: a JSON Lines file with a new key on every line cannot grow a manifest."""

# Whitespace, the no-break space spreadsheets write, and a byte-order mark left on the first name.
_AROUND_NAMES = string.whitespace + "\u00a0\ufeff"


def normalise_name(name: str) -> str:
    """The form in which a column name is compared: trimmed (whitespace, no-break space, BOM), casefolded."""
    return name.strip(_AROUND_NAMES).casefold()


def trimmed_name(name: str) -> str:
    """A column name as written, less what surrounds it: how unknown columns are named (extras, manifests)."""
    return name.strip(_AROUND_NAMES)


@dataclass(frozen=True, slots=True)
class Contract:
    """What a dataset's files may do that its schema does not say; see the module docstring."""

    unknown_columns: UnknownColumns = "reject"

    def __post_init__(self) -> None:
        if self.unknown_columns not in UNKNOWN_COLUMN_POLICIES:
            raise ValueError(
                f"unknown_columns must be one of {', '.join(UNKNOWN_COLUMN_POLICIES)}, "
                f"not {self.unknown_columns!r}"
            )


_KINDS = ("matched", "ignored", "kept", "rejected")
_TEMPLATES = {
    "matched": "matched columns by a variant of their name: {}",
    "ignored": "ignored columns: {}",
    "kept": "kept columns: {} (in the records' extras, not in the table)",
    "rejected": "rejected columns: {} (unknown to the schema; the contract rejects unknown columns)",
}


@dataclass(slots=True)
class ContractReport:
    """What the contract decided for one file (or part): names per kind of decision, order-free.

    ``matched`` holds ``'<as written>' as <schema name>`` for names matched only once normalised.
    """

    names: dict[str, set[str]] = field(default_factory=lambda: {kind: set() for kind in _KINDS})
    truncated: set[str] = field(default_factory=set)

    def note(self, kind: str, name: str) -> None:
        names = self.names[kind]
        if name in names:
            return
        if len(names) >= MAX_NAMES:
            self.truncated.add(kind)
            return
        names.add(name)

    def merge(self, other: ContractReport) -> None:
        for kind, names in other.names.items():
            for name in sorted(names):
                self.note(kind, name)
        self.truncated |= other.truncated

    def decisions(self) -> list[str]:
        """One sentence per kind of decision, names sorted: the same report always reads the same."""
        lines = []
        for kind in _KINDS:
            names = sorted(self.names[kind])
            if names:
                more = ", and more" if kind in self.truncated else ""
                lines.append(_TEMPLATES[kind].format(", ".join(names) + more))
        return lines

    def to_dict(self) -> dict[str, list[str]]:
        """JSON form (a part's result, a checkpoint); ``truncated`` lists the kinds that overflowed."""
        raw = {kind: sorted(names) for kind, names in self.names.items() if names}
        if self.truncated:
            raw["truncated"] = sorted(self.truncated)
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, list[str]] | None) -> ContractReport:
        report = cls()
        for kind, names in (raw or {}).items():
            if kind == "truncated":
                report.truncated.update(names)
            elif kind in report.names:
                for name in names:
                    report.note(kind, name)
        return report

"""What a layer found out about one recipient, before a reason is decided."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

__all__ = ["Finding"]


@dataclass(frozen=True, slots=True)
class Finding:
    """Facts about one recipient from one layer; empty strings where unknown."""

    recipient: str
    action: str = ""
    #: The address last handed to, when another than `recipient` (the one mailed).
    final_recipient: str = ""
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    context: str = ""  # more of the notice, read for the reason but not shown
    remote_mta: str = ""
    reporting_mta: str = ""
    arrival_date: str = ""
    smtp_command: str = ""
    diagnostic_type: str = ""
    feedback_type: str = ""
    source: str = ""

    def merged(self, other: Finding) -> Finding:
        """This finding with the gaps filled from `other` (same recipient). The
        other's context only comes along when this one has no diagnostic: it
        is evidence about the other's text."""
        updates = {
            f.name: getattr(other, f.name)
            for f in fields(self)
            if not getattr(self, f.name) and getattr(other, f.name)
        }
        if self.diagnostic:
            updates.pop("context", None)
        return replace(self, **updates) if updates else self

"""What an analysis report holds: the settings it ran with and one struct per kind of finding."""

from __future__ import annotations

from datetime import date, datetime

import msgspec


class AfterHours(msgspec.Struct, kw_only=True):
    actor: str | None
    actor_tenant: str | None
    departments: list[str]
    day: date
    """Japan date."""
    kind: str
    """``holiday`` (public holiday or closure day), ``weekend`` or ``after_hours``."""
    holiday: str | None
    events: int
    first: datetime
    last: datetime
    event_ids: list[str]
    more_events: bool
    """True when ``events`` exceeds the ids listed: follow ``query``."""
    query: str


class BulkAccess(msgspec.Struct, kw_only=True):
    actor: str | None
    actor_tenant: str | None
    window_start: datetime
    window_end: datetime
    residents: int
    events: int
    event_ids: list[str]
    more_events: bool
    query: str


class RepeatedDenials(msgspec.Struct, kw_only=True):
    actor: str | None
    actor_tenant: str | None
    denials: int
    first: datetime
    last: datetime
    actions: list[str]
    reasons: list[str]
    event_ids: list[str]
    more_events: bool
    query: str


class FailedLogins(msgspec.Struct, kw_only=True):
    client_addr: str | None
    failures: int
    first: datetime
    last: datetime
    reasons: list[str]
    event_ids: list[str]
    more_events: bool
    query: str
    """Every failed login of the window (the events API has no address filter)."""


class IndividualNumberReads(msgspec.Struct, kw_only=True):
    actor: str | None
    actor_tenant: str | None
    departments: list[str]
    purposes: list[str]
    reads: int
    residents: int
    first: datetime
    last: datetime
    query: str


class AnalysisSettingsOut(msgspec.Struct, kw_only=True):
    office_hours: str
    weekends_closed: bool
    time_zone: str
    bulk_residents_per_hour: int
    denials: int


class AnalysisReport(msgspec.Struct, kw_only=True):
    tenant: str
    since: datetime = msgspec.field(name="from")
    until: datetime = msgspec.field(name="to")
    settings: AnalysisSettingsOut
    after_hours: list[AfterHours]
    bulk_access: list[BulkAccess]
    repeated_denials: list[RepeatedDenials]
    failed_logins: list[FailedLogins]
    individual_number_reads: list[IndividualNumberReads]
    truncated: bool
    """Some analysis had more than MAX_FINDINGS findings: narrow the window."""

    @property
    def findings(self) -> int:
        return (
            len(self.after_hours)
            + len(self.bulk_access)
            + len(self.repeated_denials)
            + len(self.failed_logins)
            + len(self.individual_number_reads)
        )

"""Offboarding: every 介護保険 record of the town, decrypted, as JSON-ready lists."""

from __future__ import annotations

from typing import Any

from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo.models import period_to_json
from shared_gov.domains.kaigo.repository import determinations, facilities, insured


async def export_all(uow: TenantUnitOfWork) -> dict[str, list[dict[str, Any]]]:
    people = await insured.every(uow)
    queue = await determinations.every(uow)
    places = await facilities.every(uow)
    return {
        "kaigo_insured": [
            {
                "id": p.id,
                "resident_id": p.resident_id,
                "status": p.status,
                "category": p.category.value,
                "insurer_town": p.insurer_town,
                "insured_number": p.insured_number,
                "periods": [period_to_json(x) for x in p.periods],
                "tokurei": p.tokurei.to_json() if p.tokurei else None,
                "card": p.card.to_json(),
                "notes": p.notes,
            }
            for p in people
        ],
        "kaigo_determinations": [
            {
                "id": d.id,
                "resident_id": d.resident_id,
                "kind": d.kind,
                "status": d.status,
                "proposed_on": d.proposed_on.isoformat(),
                "deadline": d.deadline.isoformat(),
                "proposal": d.proposal.to_json(),
                "facility": d.facility.to_json() if d.facility else None,
                "correction": d.correction.to_json() if d.correction else None,
                "superseded_by": d.superseded_by,
            }
            for d in queue
        ],
        "kaigo_facilities": [
            {
                "id": f.id,
                "name": f.name,
                "address": f.address,
                "kind": f.kind,
                "places": f.places,
                "covered": f.covered,
            }
            for f in places
        ],
    }

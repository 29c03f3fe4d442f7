"""Who acts when no person does: the consumer and the daily job, as the town's log
records them (ids, roles and the purpose; never a name)."""

from __future__ import annotations

from shared_gov.audit.recorder import Actor

PURPOSE = "kaigo.qualification"


def system_actor(town: str, job: str = "consumer") -> Actor:
    """The consumer's (or a job's) actor in town ``town``'s log."""
    return Actor(
        subject=f"system:kaigo-{job}",
        tenant=town,
        department="kaigo",
        roles=("system",),
        auth_strength="local",
        client_addr=None,
        user_agent=f"shared-gov kaigo {job}",
        purpose=PURPOSE,
    )

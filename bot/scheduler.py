"""Recurring work (outbox, mailbox safety-net poll, reminders) on APScheduler.

Jobs are registered on the service by the core and the integrations; here they are started in a
background scheduler. A job that raises is logged and runs again at its next tick: one failing
integration never stops the others.
"""
from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from bot.service import Service

log = logging.getLogger(__name__)


def _guarded(job_id: str, func):
    def run() -> None:
        try:
            func()
        except Exception:  # noqa: BLE001
            log.exception("scheduled job %s failed; it will run again", job_id)

    return run


def start_scheduler(service: Service) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1,
                                                                  "misfire_grace_time": 300})
    for job in service.jobs:
        scheduler.add_job(_guarded(job.id, job.func), "interval", seconds=job.seconds, id=job.id)
    scheduler.start()
    service.components["scheduler"] = scheduler
    return scheduler

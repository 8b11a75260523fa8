"""Recurring work (outbox, mailbox safety-net poll, reminders) on APScheduler.

Jobs are registered on the service by the core and the integrations; here they are started in a
background scheduler, each once at start (a restarted service catches up at once) and then every
`seconds`. A job that raises is logged and runs again at its next tick: one failing integration
never stops the others. A `single` job runs in one instance at a time: a tick that finds another
instance running it (a named lock in the store) skips. Work that instances share out (the outbox)
is not single: its items are claimed one by one.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from bot.service import Job, Service
from bot.store import Store

log = logging.getLogger(__name__)


class _SkippedTickFilter(logging.Filter):
    """A tick that finds the job's previous run still going is skipped, by design (the run will pick
    up what the tick would have): not worth a warning every second while the drain works through a burst."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_SkippedTickFilter())


def _guarded(job: Job, store: Store):
    def run() -> None:
        try:
            if not job.single:
                job.func()
                return
            with store.exclusive(f"job:{job.id}", wait=False) as mine:
                if mine:
                    job.func()
        except Exception:  # noqa: BLE001
            log.exception("scheduled job %s failed; it will run again", job.id)

    return run


def start_scheduler(service: Service) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1,
                                                                  "misfire_grace_time": 300})
    start = datetime.now(timezone.utc)
    for job in service.jobs:
        scheduler.add_job(_guarded(job, service.store), "interval", seconds=job.seconds, id=job.id,
                          next_run_time=start)
    scheduler.start()
    service.components["scheduler"] = scheduler
    return scheduler

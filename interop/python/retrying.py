"""A Python nameko service retrying with nameko-amqp-retry 0.7.1, next to the Rust
``rs_flaky`` of ``tests/retry.rs``: the same failing handler, the same schedule."""

import time

from nameko_amqp_retry import entrypoint_retry
from nameko_amqp_retry.events import event_handler

from services import Recorder


class Flaky:
    """Handles ``jobs``' ``job_submitted`` events ``{"id", "fail_times"}``, failing with
    ``ValueError`` while its attempt is at most ``fail_times``; 3 retries after 1, 2 and 4
    seconds (no random spread)."""

    name = "py_flaky"
    records = Recorder()

    @event_handler("jobs", "job_submitted")
    @entrypoint_retry(
        retry_for=ValueError, limit=3, schedule=(1000, 2000, 4000), random_sigma=0
    )
    def handle_job(self, job):
        attempt = 1 + sum(1 for r in self.records if r["id"] == job["id"])
        self.records.append({"id": job["id"], "attempt": attempt, "at": time.time()})
        if attempt <= job["fail_times"]:
            raise ValueError("job {} fails on attempt {}".format(job["id"], attempt))

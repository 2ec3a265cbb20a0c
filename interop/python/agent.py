"""Hosts Python nameko services and clients for the nameko-rs interop tests.

Served mode (``python agent.py``): the test harness starts one agent per test binary
and sends it requests on stdin, one JSON object per line; answers go to stdout the same
way::

    -> {"id": 7, "op": "call", "args": {"uri": "amqp://...", "service": "rs_api"}}
    <- {"id": 7, "ok": true, "value": ...}
    <- {"id": 7, "ok": false, "error": {"type": "nameko.exceptions.MethodNotFound"}}

Every request runs in its own green thread, so tests running in parallel share one
agent. Services belong to the AMQP URI they were started with, a fresh virtual host per
test; ``stop`` ends a test's services. When stdin closes (the test binary ended, however
it ended) the agent kills every service and exits.

One-shot mode (``python agent.py <op> '<json arguments>'``) runs one client request
and prints its answer, e.g. ``python agent.py call '{"uri": "amqp://...",
"service": "rs_api", "method": "echo", "args": [1]}'``.
"""

import eventlet

eventlet.monkey_patch()

import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections import defaultdict  # noqa: E402
from operator import methodcaller  # noqa: E402

from eventlet import tpool  # noqa: E402
from eventlet.semaphore import Semaphore  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

import clients  # noqa: E402
from services import Recorder  # noqa: E402

#: How long a graceful stop may take before the services are killed.
STOP_TIMEOUT = 5
#: The agent exits after this long even if nobody closes its stdin.
MAX_LIFETIME = 15 * 60
#: How long killing the remaining services may take once stdin closed.
EXIT_TIMEOUT = 10

_runners = defaultdict(list)


def start(uri, services, config=None):
    """Starts ``module:Class`` services in one runner, connected to ``uri``, and returns
    once their consumers are ready."""
    runner = ServiceRunner(dict(config or {}, AMQP_URI=uri))
    for path in services:
        module, _, name = path.partition(":")
        runner.add_service(getattr(importlib.import_module(module), name))
    runner.start()
    _runners[uri].append(runner)
    return list(runner.service_names)


def stop(uri, service=None, kill=False):
    """Stops the services started with ``uri`` (only ``service``, if given), all at
    once: gracefully, and by force after ``STOP_TIMEOUT`` seconds; or by force at once
    with ``kill`` (which still takes nameko up to a second per container)."""
    containers = [
        container
        for runner in _runners.get(uri, [])
        for container in runner.containers
        if service in (None, container.service_name)
    ]
    if service is None:
        _runners.pop(uri, None)
    end = methodcaller("kill") if kill else _stop
    list(eventlet.GreenPool().imap(end, containers))
    return [container.service_name for container in containers]


def _stop(container):
    try:
        with eventlet.Timeout(STOP_TIMEOUT):
            container.stop()
    except eventlet.Timeout:
        container.kill()


def records(uri, service):
    """What the ``Recorder`` of every ``service`` container of ``uri`` holds."""
    found = []
    for runner in _runners.get(uri, []):
        for container in runner.containers:
            if container.service_name == service:
                for dependency in container.dependencies:
                    if isinstance(dependency, Recorder):
                        found.extend(dependency.records)
    return found


OPS = dict(clients.OPS, start=start, stop=stop, records=records)


def run(op, args):
    """Runs one request: the answer as a dict with ``ok`` and ``value`` or ``error``."""
    try:
        return {"ok": True, "value": OPS[op](**args)}
    except Exception as exc:  # reported to the test, which decides
        return {"ok": False, "error": clients.describe_exception(exc)}


class Channel:
    """Answers on the real stdout, one line each; anything else printed to stdout goes
    to stderr, so it cannot break the protocol."""

    def __init__(self):
        self._out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        self._lock = Semaphore()

    def send(self, message):
        line = json.dumps(message, default=repr) + "\n"
        with self._lock:
            self._out.write(line)
            self._out.flush()


def serve():
    """Answers requests from stdin until it closes, then kills every service."""
    channel = Channel()
    eventlet.spawn_after(MAX_LIFETIME, os._exit, 3)
    pool = eventlet.GreenPool()

    def handle(line):
        request = json.loads(line)
        answer = run(request["op"], request.get("args", {}))
        answer["id"] = request["id"]
        channel.send(answer)

    channel.send({"ready": True, "pid": os.getpid()})
    while True:
        # A real thread reads stdin, so the hub keeps serving while nothing comes.
        line = tpool.execute(sys.stdin.readline)
        if not line:
            break
        pool.spawn_n(handle, line)
    eventlet.spawn_after(EXIT_TIMEOUT, os._exit, 4)
    for uri in list(_runners):
        stop(uri, kill=True)
    os._exit(0)


def main():
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if len(sys.argv) == 1:
        serve()
    elif len(sys.argv) == 3:
        print(json.dumps(run(sys.argv[1], json.loads(sys.argv[2])), default=repr))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

"""Python nameko services that run next to Rust services in the interop tests.

Names start with ``py_``, except where a test needs a Python and a Rust service to have
the same name (``shared``, ``pool_shared``). Handlers record what they received with a
``Recorder``, which the agent reads back (``records``), so that recording adds no RPC
method, and so no queue, to a service that shares its queues with a Rust service.
"""

import time
import uuid
from datetime import date, datetime
from decimal import Decimal
from functools import partial

from kombu import Exchange, Queue
from nameko.events import BROADCAST, SINGLETON, EventDispatcher, event_handler
from nameko.extensions import DependencyProvider
from nameko.messaging import Publisher, consume
from nameko.rpc import ReplyListener, ServiceProxy, rpc

from interop_errors import InsufficientFunds


class CustomError(Exception):
    """A user exception; its ``exc_path`` on the wire is ``services.CustomError``."""


class Worker(DependencyProvider):
    """The worker's context itself, for methods that report how they were called."""

    def get_dependency(self, worker_ctx):
        return worker_ctx


class Recorder(DependencyProvider):
    """A list, one per container, of what the container's handlers received."""

    def setup(self):
        self.records = []

    def get_dependency(self, worker_ctx):
        return self.records


class ServiceProxies(DependencyProvider):
    """``proxies("name")`` is an RPC proxy to any service, carrying the worker's context
    (nameko 2.x has no cluster proxy for use inside services)."""

    rpc_reply_listener = ReplyListener()

    def get_dependency(self, worker_ctx):
        return partial(ServiceProxy, worker_ctx, reply_listener=self.rpc_reply_listener)


def describe(worker_ctx):
    """What a worker knows about its call: ids, call id stack and context data."""
    return {
        "service": worker_ctx.service_name,
        "call_id": worker_ctx.call_id,
        "stack": worker_ctx.call_id_stack,
        "origin": worker_ctx.origin_call_id,
        "parent": worker_ctx.immediate_parent_call_id,
        "data": worker_ctx.data,
    }


class Api:
    """The Python service Rust clients and services call."""

    name = "py_api"
    worker = Worker()

    @rpc
    def echo(self, value):
        return value

    @rpc
    def mixed(self, a, b, c=None):
        return {"a": a, "b": b, "c": c}

    @rpc
    def nothing(self):
        return None

    @rpc
    def three(self, a, b, c):
        return [a, b, c]

    @rpc
    def signature(self, *args, **kwargs):
        return {"args": list(args), "kwargs": kwargs}

    @rpc
    def reverse(self, text):
        return text[::-1]

    @rpc
    def length(self, value):
        return len(value)

    @rpc
    def sleep(self, seconds):
        time.sleep(seconds)
        return seconds

    @rpc
    def fail(self):
        raise CustomError("boom", 1, {"k": [1, 2]})

    @rpc
    def divide(self, a, b):
        if b == 0:
            raise ValueError("Division by zero")
        return a / b

    @rpc
    def withdraw(self, balance, amount):
        if amount > balance:
            raise InsufficientFunds(balance, amount)
        return balance - amount

    @rpc
    def unserializable(self):
        return object()

    @rpc
    def python_types(self):
        """Values JSON has no form for, as kombu encodes them in a reply."""
        return {
            "nan": float("nan"),
            "inf": float("inf"),
            "datetime": datetime(2024, 1, 2, 3, 4, 5),
            "date": date(2024, 1, 2),
            "decimal": Decimal("1.50"),
            "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "tuple": (1, "two"),
            "big": 2**70,
        }

    @rpc
    def context(self):
        return describe(self.worker)


class Relay:
    """One hop of a call chain: ``relay(["rs_relay", "py_relay"])`` calls the next
    service's ``relay`` with the rest of the path, and returns every hop's view."""

    name = "py_relay"
    worker = Worker()
    proxies = ServiceProxies()

    @rpc
    def relay(self, path):
        me = describe(self.worker)
        if not path:
            return [me]
        return [me] + self.proxies(path[0]).relay(path[1:])

    @rpc
    def relay_call(self, service, method, args):
        """Calls ``service.method(*args)`` and lets a failure propagate."""
        return getattr(self.proxies(service), method)(*args)


class Source:
    """Dispatches events as ``py_src``."""

    name = "py_src"
    dispatch = EventDispatcher()

    @rpc
    def emit(self, event_type, payload):
        self.dispatch(event_type, payload)


def _record(records, handler, worker_ctx, payload):
    records.append(
        {"handler": handler, "payload": payload, "worker": describe(worker_ctx)}
    )


class Listener:
    """Handles ``rs_src`` events with each of nameko's three handler types."""

    name = "py_listener"
    worker = Worker()
    records = Recorder()

    @event_handler("rs_src", "pooled")
    def on_pooled(self, payload):
        _record(self.records, "service_pool", self.worker, payload)

    @event_handler("rs_src", "single", handler_type=SINGLETON)
    def on_single(self, payload):
        _record(self.records, "singleton", self.worker, payload)

    @event_handler(
        "rs_src", "broadcast", handler_type=BROADCAST, reliable_delivery=False
    )
    def on_broadcast(self, payload):
        _record(self.records, "broadcast", self.worker, payload)


class Shared:
    """Serves ``rpc-shared`` together with a Rust service of the same name."""

    name = "shared"

    @rpc
    def whoami(self):
        return "python"

    @rpc
    def work(self, i, seconds):
        time.sleep(seconds)
        return ["python", i]


class PoolShared:
    """Shares its service-pool event queues with a Rust service of the same name: one
    reliable (durable), one not (auto-delete)."""

    name = "pool_shared"
    worker = Worker()
    records = Recorder()

    @event_handler("jobs", "job")
    def handle(self, payload):
        _record(self.records, "service_pool", self.worker, payload)

    @event_handler("jobs", "hint", reliable_delivery=False)
    def handle_hint(self, payload):
        _record(self.records, "service_pool", self.worker, payload)


class Singleton:
    """Shares the singleton queue ``evt-jobs-job_once`` with a Rust service."""

    name = "py_single"
    worker = Worker()
    records = Recorder()

    @event_handler("jobs", "job_once", handler_type=SINGLETON)
    def handle(self, payload):
        _record(self.records, "singleton", self.worker, payload)


AUDIT = Exchange("audit", type="topic")


class Audit:
    """Publishes to the ``audit`` topic exchange (``py.<action>``) and consumes what the
    Rust ``rs_audit`` publishes there (``rs.#``)."""

    name = "py_audit"
    worker = Worker()
    records = Recorder()
    publish = Publisher(exchange=AUDIT)

    @rpc
    def record(self, action):
        self.publish({"action": action, "by": "python"}, routing_key="py." + action)

    @consume(Queue("audit-python", exchange=AUDIT, routing_key="rs.#"))
    def log(self, body):
        _record(self.records, "consume", self.worker, body)

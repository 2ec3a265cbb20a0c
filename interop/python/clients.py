"""Python nameko clients, used the way a Python application uses them: standalone RPC
proxies and the standalone event dispatcher.

Every function takes the AMQP URI of the test's virtual host first and returns plain
JSON data; a failed call raises the exception nameko raised, which the agent reports
with ``describe_exception``.
"""

import time
import uuid
from datetime import date, datetime
from decimal import Decimal

from kombu import Connection, Exchange, Queue
from nameko import exceptions
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy, ServiceRpcProxy

import interop_errors


def _config(uri, config=None):
    return dict(config or {}, AMQP_URI=uri)


def call(
    uri,
    service,
    method,
    args=(),
    kwargs=None,
    context_data=None,
    timeout=10,
    proxy="cluster",
    config=None,
):
    """One call through a ``ClusterRpcProxy`` (or a ``ServiceRpcProxy``), configured
    with ``config`` besides the URI."""
    kwargs = kwargs or {}
    config = _config(uri, config)
    if proxy == "service":
        with ServiceRpcProxy(
            service, config, context_data=context_data, timeout=timeout
        ) as target:
            return getattr(target, method)(*args, **kwargs)
    with ClusterRpcProxy(config, context_data=context_data, timeout=timeout) as cluster:
        return getattr(cluster[service], method)(*args, **kwargs)


def call_async(uri, service, method, calls, timeout=10):
    """Sends every call with ``call_async`` before waiting for any result.

    ``calls`` is a list of ``[args, kwargs]``. Returns the results in call order and
    the seconds it all took.
    """
    started = time.monotonic()
    with ClusterRpcProxy(_config(uri), timeout=timeout) as cluster:
        target = getattr(cluster[service], method)
        replies = [target.call_async(*args, **kwargs) for args, kwargs in calls]
        results = [reply.result() for reply in replies]
    return {"results": results, "elapsed": time.monotonic() - started}


def call_python_types(uri, service, method, timeout=10):
    """Calls ``method`` with one argument holding values JSON has no form for, encoded
    as kombu encodes them: ``NaN`` and ``Infinity`` tokens, and tagged
    ``{"__type__", "__value__"}`` objects for dates, decimals and UUIDs."""
    values = {
        "nan": float("nan"),
        "inf": float("inf"),
        "-inf": float("-inf"),
        "datetime": datetime(2024, 1, 2, 3, 4, 5),
        "date": date(2024, 1, 2),
        "decimal": Decimal("1.50"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    }
    return call(uri, service, method, args=[values], timeout=timeout)


def call_raw(uri, routing_key, body, content_type="application/json", timeout=10):
    """Publishes a hand-made request and handles its reply as nameko's proxies do:
    returns ``result``, or raises ``nameko.exceptions.deserialize(error)``."""
    reply_to = str(uuid.uuid4())
    exchange = Exchange("nameko-rpc", type="topic", durable=True)
    replies = Queue(
        f"rpc.reply-interop_raw-{reply_to}",
        exchange=exchange,
        routing_key=reply_to,
        auto_delete=True,
    )
    with Connection(uri) as connection:
        with connection.SimpleQueue(replies) as reply_queue:
            connection.Producer().publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                reply_to=reply_to,
                correlation_id=str(uuid.uuid4()),
                content_type=content_type,
                content_encoding="utf-8",
            )
            message = reply_queue.get(timeout=timeout)
            message.ack()
    reply = message.payload
    if reply["error"]:
        raise exceptions.deserialize(reply["error"])
    return reply["result"]


def dispatch(uri, source, event_type, payload):
    """Dispatches one event through nameko's standalone ``event_dispatcher``."""
    event_dispatcher(_config(uri))(source, event_type, payload)


def _type_tree(value):
    """The Python types of a value, as data: dicts and lists walked, every other value
    by its type's name."""
    if type(value) is dict:
        return {"dict": {key: _type_tree(item) for key, item in value.items()}}
    if type(value) is list:
        return {"list": [_type_tree(item) for item in value]}
    return type(value).__name__


def call_types(uri, service, method, args=(), kwargs=None, timeout=10):
    """One call through a ``ClusterRpcProxy``; returns the result and the Python types
    the caller got it as (``{"dict": {"id": "int"}}``)."""
    result = call(uri, service, method, args=args, kwargs=kwargs, timeout=timeout)
    return {"result": result, "types": _type_tree(result)}


OPS = {
    "call": call,
    "call_types": call_types,
    "call_async": call_async,
    "call_python_types": call_python_types,
    "call_raw": call_raw,
    "dispatch": dispatch,
}


def _exception_classes():
    for module in (exceptions, interop_errors):
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, BaseException):
                yield name, value


EXCEPTION_CLASSES = sorted(_exception_classes(), key=lambda item: item[0])


def describe_exception(exc):
    """An exception as data: its class, the nameko (and shared) exception classes it is
    an instance of, its args and ``str()``, and ``RemoteError``'s fields."""
    cls = type(exc)
    return {
        "type": f"{cls.__module__}.{cls.__qualname__}",
        "instance_of": [
            name for name, kind in EXCEPTION_CLASSES if isinstance(exc, kind)
        ],
        "args": list(exc.args),
        "str": str(exc),
        "exc_type": getattr(exc, "exc_type", None),
        "value": getattr(exc, "value", None),
    }

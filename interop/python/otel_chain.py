"""The Python half of the interop suite's trace test, under Python nameko 3 instrumented
with opentelemetry-instrumentation-nameko (the venv of ``scripts/python-env --otel``)::

    python otel_chain.py '{"uri": "amqp://...", "spans": "/tmp/spans.jsonl", "value": 21}'

Starts ``py_front`` and ``py_back`` (``otel_services``), calls ``py_front.relay(value)``
through an instrumented ``ClusterRpcClient``, waits until ``py_back`` handled the Rust
service's ``relayed`` event, and prints ``{"result": ...}``. Every span Python made is
written to the ``spans`` file, one JSON object per line (the SDK's ``to_json``).
"""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

from nameko import config  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402
from nameko.standalone.rpc import ClusterRpcClient  # noqa: E402
from nameko_opentelemetry import NamekoInstrumentor  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

import otel_services  # noqa: E402

#: How long the call and the event may take.
TIMEOUT = 30


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = json.loads(sys.argv[1])
    spans = open(args["spans"], "w")
    provider = TracerProvider(resource=Resource.create({"service.name": "python"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            ConsoleSpanExporter(
                out=spans, formatter=lambda span: span.to_json(indent=None) + "\n"
            )
        )
    )
    trace.set_tracer_provider(provider)
    NamekoInstrumentor().instrument()

    with config.patch({"AMQP_URI": args["uri"]}):
        runner = ServiceRunner()
        runner.add_service(otel_services.PyFront)
        runner.add_service(otel_services.PyBack)
        runner.start()
        try:
            with ClusterRpcClient(timeout=TIMEOUT) as client:
                result = client.py_front.relay(args["value"])
            with eventlet.Timeout(TIMEOUT):
                otel_services.RELAYED.wait()
        finally:
            # Gracefully: the workers' spans end when they finish.
            try:
                with eventlet.Timeout(TIMEOUT):
                    runner.stop()
            except eventlet.Timeout:
                runner.kill()
    provider.shutdown()
    spans.close()
    print(json.dumps({"result": result}))


if __name__ == "__main__":
    main()

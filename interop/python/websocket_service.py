"""The ``websocket_service`` example of nameko-rs (``examples/src/websocket.rs``), for
Python nameko 2.14.1: ``python websocket_service.py ADDRESS [AMQP_URI]`` serves it on
ADDRESS (``host:port``) until it is killed, on the in-memory transport unless an AMQP
URI is given (then its ``order_placed`` handler hears ``order_service``)."""

import json
import os
import sys

import eventlet

eventlet.monkey_patch()  # noqa: E402

import importlib.metadata  # noqa: E402

import werkzeug  # noqa: E402

# nameko 2.14.1 reads `werkzeug.__version__`, which werkzeug 3 no longer has.
if not hasattr(werkzeug, "__version__"):
    werkzeug.__version__ = importlib.metadata.version("werkzeug")

from nameko.events import event_handler  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402
from nameko.web.handlers import http  # noqa: E402
from nameko.web.websocket import WebSocketHubProvider, rpc  # noqa: E402

PAGE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "static",
    "websocket.html",
)


class ValueTooLarge(Exception):
    pass


class WebsocketEdges:
    """Methods of the interop comparison only, served by ``websocket_service`` too
    (nameko-rs serves them from another service of the process)."""

    hub = WebSocketHubProvider()

    @rpc
    def fail(self, socket_id, value):
        raise ValueTooLarge(value)

    @rpc
    def subscribe_other(self, socket_id, other, channel):
        self.hub.subscribe(other, channel)
        return "subscribed"

    @rpc
    def unicast(self, socket_id, target, value):
        return self.hub.unicast(target, "direct", value)


class WebsocketService(WebsocketEdges):
    name = "websocket_service"

    @rpc
    def echo(self, socket_id, value):
        return value

    @rpc
    def subscribe(self, socket_id, channel):
        self.hub.subscribe(socket_id, channel)
        return "subscribed"

    @rpc
    def unsubscribe(self, socket_id, channel):
        self.hub.unsubscribe(socket_id, channel)
        return "unsubscribed"

    @rpc
    def subscriptions(self, socket_id):
        return self.hub.get_subscriptions(socket_id)

    @http("POST", "/broadcast/<channel>")
    def broadcast(self, request, channel):
        self.hub.broadcast(channel, "message", json.loads(request.get_data(as_text=True)))
        return json.dumps({"sent": True})

    @http("GET", "/")
    def page(self, request):
        with open(PAGE) as page:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page.read()

    @event_handler("order_service", "order_placed")
    def order_placed(self, payload):
        self.hub.broadcast("orders", "order_placed", payload)


def main():
    address = sys.argv[1]
    uri = sys.argv[2] if len(sys.argv) > 2 else "memory://"
    runner = ServiceRunner({"WEB_SERVER_ADDRESS": address, "AMQP_URI": uri})
    runner.add_service(WebsocketService)
    runner.start()
    print("ready", flush=True)
    runner.wait()


if __name__ == "__main__":
    # Run as the module `websocket_service`, so that its errors' `exc_path` is
    # `websocket_service.ValueTooLarge` (not `__main__.ValueTooLarge`).
    import websocket_service

    websocket_service.main()

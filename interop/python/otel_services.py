"""Python nameko 3 services of the interop suite's trace test (``otel_chain.py``), in a
chain with the Rust service ``rs_middle``::

    py_front.relay -> rs_middle.relay -> py_back.leaf
                                          py_back dispatches ``leafed`` -> rs_middle
    rs_middle dispatches ``relayed`` -> py_back.on_relayed
"""

from eventlet.event import Event
from nameko.events import EventDispatcher, event_handler
from nameko.rpc import ServiceRpc, rpc

#: Sent when ``py_back`` handled the Rust service's ``relayed`` event.
RELAYED = Event()


class PyFront:
    name = "py_front"

    rs_middle = ServiceRpc("rs_middle")

    @rpc
    def relay(self, value):
        return self.rs_middle.relay(value)


class PyBack:
    name = "py_back"

    dispatch = EventDispatcher()

    @rpc
    def leaf(self, value):
        self.dispatch("leafed", {"value": value})
        return value * 2

    @event_handler("rs_middle", "relayed")
    def on_relayed(self, payload):
        if not RELAYED.ready():
            RELAYED.send(payload)

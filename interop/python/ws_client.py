"""Plays a script of WebSocket frames against a nameko ``/ws`` with websocket-client
(PyPI), and prints what came back, for the comparisons of the interop suite.

``python ws_client.py HOST:PORT`` reads the script, a JSON list of steps, on stdin::

    {"connect": "a"}                      open socket "a", read its "connected" event
    {"send": "a", "text": "..."}          send a text frame
    {"send_binary": "a", "text": "..."}   send it as a binary frame
    {"recv": "a"}                         read the next frame
    {"post": "/broadcast/x", "body": "{...}"}  an HTTP POST; its status and body
    {"close": "a"}                        close socket "a"
    {"sleep": 0.2}

and prints one JSON list: what each ``connect``, ``recv`` and ``post`` got, as text,
with every socket id replaced by ``<name>``.
"""

import json
import sys
import time
import urllib.request

import websocket

TIMEOUT = 10


def main():
    address = sys.argv[1]
    script = json.load(sys.stdin)
    sockets = {}
    ids = {}
    out = []

    def normalized(text):
        for name, socket_id in ids.items():
            text = text.replace(socket_id, "<{}>".format(name))
        return text

    for step in script:
        if "connect" in step:
            name = step["connect"]
            ws = websocket.create_connection("ws://{}/ws".format(address), timeout=TIMEOUT)
            sockets[name] = ws
            connected = ws.recv()
            ids[name] = json.loads(connected)["data"]["socket_id"]
            out.append({"connect": name, "frame": normalized(connected),
                        "socket_id_length": len(ids[name])})
        elif "send" in step:
            text = step["text"]
            for name, socket_id in ids.items():
                text = text.replace("<{}>".format(name), socket_id)
            sockets[step["send"]].send(text)
        elif "send_binary" in step:
            sockets[step["send_binary"]].send_binary(step["text"].encode("utf-8"))
        elif "recv" in step:
            frame = sockets[step["recv"]].recv()
            if isinstance(frame, bytes):
                frame = frame.decode("utf-8")
            out.append({"recv": step["recv"], "frame": normalized(frame)})
        elif "post" in step:
            request = urllib.request.Request(
                "http://{}{}".format(address, step["post"]),
                data=step["body"].encode("utf-8"), method="POST",
            )
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                out.append({"post": step["post"], "status": response.status,
                            "body": response.read().decode("utf-8")})
        elif "close" in step:
            sockets.pop(step["close"]).close()
        elif "sleep" in step:
            time.sleep(step["sleep"])
    for ws in sockets.values():
        ws.close()
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()

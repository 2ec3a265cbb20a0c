"""The handlers of nameko's HTTP documentation, as the Rust example `http_service` serves
them; `python http_service.py ADDRESS` serves them on ADDRESS (``host:port``) until it
is killed."""

import json
import sys

import eventlet

eventlet.monkey_patch()  # noqa: E402

from nameko.exceptions import safe_for_serialization  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402
from nameko.web.handlers import HttpRequestHandler, http  # noqa: E402
from werkzeug.wrappers import Response  # noqa: E402


class HttpError(Exception):
    error_code = "BAD_REQUEST"
    status_code = 400


class InvalidArgumentsError(HttpError):
    error_code = "INVALID_ARGUMENTS"


class HttpEntrypoint(HttpRequestHandler):
    def response_from_exception(self, exc):
        if isinstance(exc, HttpError):
            response = Response(
                json.dumps({
                    "error": exc.error_code,
                    "message": safe_for_serialization(exc),
                }),
                status=exc.status_code,
                mimetype="application/json",
            )
            return response
        return HttpRequestHandler.response_from_exception(self, exc)


custom_http = HttpEntrypoint.decorator


class HttpEdges:
    """Converter and routing edge cases, served by ``http_service`` too: nameko gives
    each container a web server of its own, all listening on one port (SO_REUSEPORT),
    so two services with ``@http`` in one process would share requests at random."""

    @http("GET", "/float/<float:value>")
    def get_float(self, request, value):
        return json.dumps({"value": value})

    @http("GET", "/files/<path:name>")
    def files(self, request, name):
        return name

    @http("GET", "/items/<uuid:item_id>")
    def item(self, request, item_id):
        return str(item_id)

    @http("GET", "/pages/<any(about, help):page>")
    def page(self, request, page):
        return page

    @http("GET", "/say/<word>")
    def say(self, request, word):
        return "{} {}".format(word, request.path)

    @http("GET", "/say/hello")
    def say_hello(self, request):
        return "static first"

    @http("GET", "/folder/")
    def folder(self, request):
        return "folder"

    @http("GET", "/query")
    def query(self, request):
        return json.dumps(request.args.getlist("a"))

    @http("GET", "/small/<int(max=255):value>")
    def small(self, request, value):
        return str(value)

    @http("PUT,PATCH", "/body")
    def body(self, request):
        return "{} {}".format(request.method, request.get_data(as_text=True))


class HttpService(HttpEdges):
    name = "http_service"

    @http("GET", "/get/<int:value>")
    def get_method(self, request, value):
        return json.dumps({"value": value})

    @http("POST", "/post")
    def do_post(self, request):
        return "received: {}".format(request.get_data(as_text=True))

    @http("GET,PUT,POST,DELETE", "/multi")
    def do_multi(self, request):
        return request.method

    @http("GET", "/privileged")
    def forbidden(self, request):
        return 403, "Forbidden"

    @http("GET", "/headers")
    def redirect(self, request):
        return 201, {"Location": "https://www.example.com/widget/1"}, ""

    @http("GET", "/custom")
    def custom(self, request):
        return Response("payload")

    @custom_http("GET", "/custom_exception")
    def custom_exception(self, request):
        raise InvalidArgumentsError("Argument `foo` is required.")

    @http("GET", "/divide/<int:a>/<int:b>", expected_exceptions=ZeroDivisionError)
    def divide(self, request, a, b):
        return json.dumps({"result": a / b})


def main():
    address = sys.argv[1]
    runner = ServiceRunner({"WEB_SERVER_ADDRESS": address, "AMQP_URI": "memory://"})
    runner.add_service(HttpService)
    runner.start()
    print("ready", flush=True)
    runner.wait()


if __name__ == "__main__":
    main()

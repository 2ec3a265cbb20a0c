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


class HttpService:
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

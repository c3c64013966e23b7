"""moto's server with DynamoDB requests applied one at a time.

DynamoDB applies a conditional write or a transaction atomically; moto's
threaded server does not (two racing transactions may both pass their
conditions). Serializing the DynamoDB requests restores that atomicity while
SQS long polls keep their own threads.

Usage: python3 moto_serial.py PORT
"""
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

dispatcher = DomainDispatcherApplication(create_backend_app)
dynamodb = threading.Lock()


def app(environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with dynamodb:
            return list(dispatcher(environ, start_response))
    return dispatcher(environ, start_response)


if __name__ == "__main__":
    run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=True)

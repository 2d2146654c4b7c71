"""The baseline of `make bench`: a bare Flask app answering a constant JSON object.

Run under the same gunicorn settings as the Vault (`gunicorn tests.benchmarks.bare_app:app`),
it measures what the machine, gunicorn's sync workers and Flask cost before any of our code.
"""
from flask import Flask, jsonify

app = Flask(__name__)

BODY = {"status": "ok"}


@app.get("/")
def index():
    return jsonify(BODY)

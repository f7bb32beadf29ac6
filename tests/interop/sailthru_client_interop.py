#!/usr/bin/env python3
"""Drive sailbulk's local Sailthru API simulator with the official Python client.

The official client (``sailthru-client``, pinned in ``requirements.txt`` beside this file) is
what many real users run, so the simulator must accept its requests byte for byte as it sends
them: form-urlencoded bodies and query strings with ``+`` for spaces, JSON text made by
``simplejson.dumps`` with ``", "`` / ``": "`` separators and ``\\uXXXX`` escapes, and a
multipart upload whose file part is named ``file``, has the local file's base name and no
Content-Type. Only the client's public methods are used; nothing here builds a request by hand.

Steps (one line printed per step; the first failure stops the run with exit status 1):

a. POST /job ``update`` with a newline-JSON file (``api_post(..., ['file'])``): three lines, one
   with non-ASCII var text and one with an invalid email. The answer is ok, with a ``job_id``
   and status ``pending``.
b. GET /job until the job is ``completed`` (60 s at most, every 0.2 s); ``error`` or
   ``incomplete`` fails.
c. GET /user for both valid lines: their vars and the list ``Interop Newsletter`` arrived, the
   invalid line made no profile, and the rate-limit headers can be read through the client.
d. A client with the right key and a wrong secret is refused: error 5, HTTP 401.
e. POST /job ``import`` with ``emails`` (3 addresses), then with a file of 2 addresses; each
   job completes and GET /list gives ``count`` 3 and 2.
f. POST /list with a non-ASCII list name and var value (signed over the escaped JSON text) is
   accepted, and GET /list finds the list with its var.
g. GET /job with an unknown ``job_id`` is refused with error 99 and HTTP 400. Neither job page
   (seeds ``000_2b70c479ba2b6d9d.txt``, ``001_d2cf55a9c5806873.txt``) documents this error;
   99 / 400 is the choice ``sailbulk-spec`` makes (``api::messages::unknown_job_id``).

Expected behaviour comes from the job, job update and list pages and the API notes that
``sailbulk-spec`` cites.

``tests/interop/run.sh`` (run by CI) makes the virtual environment, starts ``sailbulk sim`` on a
free port and runs this script against it. By hand, with a simulator listening:

    python3 -m venv /tmp/sailthru-venv
    /tmp/sailthru-venv/bin/pip install -r tests/interop/requirements.txt
    SIM_URL=http://127.0.0.1:PORT SIM_API_KEY=KEY SIM_API_SECRET=SECRET \\
        /tmp/sailthru-venv/bin/python tests/interop/sailthru_client_interop.py

``SIM_URL`` is the base URL without an action (the client appends ``/job``, ``/user`` ...).
The last line is ``interop: N passed, N failed``.
"""

import json
import locale
import os
import sys
import tempfile
import time

try:
    from sailthru.sailthru_client import SailthruClient
    from sailthru.sailthru_error import SailthruClientError
except ImportError:
    sys.exit(
        "interop: the official client is not installed; run "
        "`pip install -r tests/interop/requirements.txt` in a virtual environment first"
    )

JOB_TIMEOUT_SECS = 60.0
POLL_INTERVAL_SECS = 0.2

NEWSLETTER = "Interop Newsletter"
IMPORT_LIST = "Interop Import"
IMPORT_FILE_LIST = "Interop Import File"
UNICODE_LIST = "Interop Ünïcode"
NON_ASCII_NAME = "Zoë Łódź"

UPDATE_LINES = [
    {"email": "ann@example.com", "vars": {"name": "Ann", "plan": "gold"},
     "lists": {NEWSLETTER: 1}},
    {"email": "zoe@example.com", "vars": {"name": NON_ASCII_NAME, "plan": "silver"},
     "lists": {NEWSLETTER: 1}},
    {"email": "not-an-email"},
]
IMPORT_EMAILS = ["a1@example.com", "a2@example.com", "a3@example.com"]
IMPORT_FILE_EMAILS = ["b1@example.com", "b2@example.com"]
UNKNOWN_JOB_ID = "000000000000000000000000"


class CheckFailed(Exception):
    """A check did not hold; the message says what was expected and what came back."""


def describe(response):
    """Status, error code and message (or the raw body) of a response, for failure messages."""
    body = response.get_body()
    # get_error() raises on a body that is JSON but not {"error", "errormsg"}: look first.
    if isinstance(body, dict) and {"error", "errormsg"} <= set(body):
        error = response.get_error()
        if error:
            return "HTTP %s, error %s: %s" % (
                response.get_status_code(), error.get_error_code(), error.get_message())
    raw = response.get_body(as_dictionary=False)[:300]
    return "HTTP %s, body %r" % (response.get_status_code(), raw)


def error_with_extra_keys(response):
    """Whether the body is an error object with keys beyond error/errormsg.

    The client's is_ok() is `set(body) != {"error", "errormsg"}`: such a body reads as success.
    """
    body = response.get_body()
    return isinstance(body, dict) and "error" in body and set(body) != {"error", "errormsg"}


def expect_ok(response, what):
    """The body of an ok response with HTTP 200, or CheckFailed."""
    if error_with_extra_keys(response):
        raise CheckFailed("%s: error body with keys other than error/errormsg, which the "
                          "client takes for success: %s" % (what, describe(response)))
    if not response.is_ok():
        raise CheckFailed("%s was refused: %s" % (what, describe(response)))
    if response.get_status_code() != 200:
        raise CheckFailed("%s: expected HTTP 200, got %s" % (what, describe(response)))
    return response.get_body()


def expect_error(response, what, code, status):
    """CheckFailed unless the response is the API error `code` with HTTP `status`."""
    if response.is_ok():
        hint = " (an error body must hold exactly error and errormsg for the client to see " \
            "an error)" if error_with_extra_keys(response) else ""
        raise CheckFailed("%s: expected error %d (HTTP %d), got an ok response%s: %s"
                          % (what, code, status, hint, describe(response)))
    body = response.get_body()
    got_code = body.get("error") if isinstance(body, dict) else None
    if got_code != code or response.get_status_code() != status:
        raise CheckFailed("%s: expected error %d with HTTP %d, got %s"
                          % (what, code, status, describe(response)))


def expect_equal(actual, expected, what):
    if actual != expected:
        raise CheckFailed("%s: expected %r, got %r" % (what, expected, actual))


def submit_job(client, params, what, file_path=None):
    """POST /job (with `file_path` as the multipart part `file`); returns the job_id."""
    if file_path is None:
        response = client.api_post("job", params)
    else:
        params = dict(params, file=file_path)
        response = client.api_post("job", params, ["file"])
    body = expect_ok(response, what)
    job_id = body.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise CheckFailed("%s: no job_id in the answer %r" % (what, body))
    expect_equal(body.get("status"), "pending", "%s: status of the new job" % what)
    return job_id


def wait_for_job(client, job_id):
    """Poll GET /job until the job is completed; returns the final body."""
    deadline = time.monotonic() + JOB_TIMEOUT_SECS
    while True:
        body = expect_ok(client.api_get("job", {"job_id": job_id}), "GET /job %s" % job_id)
        expect_equal(body.get("job_id"), job_id, "job_id in the status of job %s" % job_id)
        status = body.get("status")
        if status == "completed":
            return body
        if status in ("error", "incomplete"):
            raise CheckFailed("job %s ended with status %r: %r" % (job_id, status, body))
        if time.monotonic() >= deadline:
            raise CheckFailed("job %s not completed after %.0f s (last status %r)"
                              % (job_id, JOB_TIMEOUT_SECS, status))
        time.sleep(POLL_INTERVAL_SECS)


def list_count(client, name):
    body = expect_ok(client.get_list(name), "GET /list %r" % name)
    return body.get("count")


def write_file(directory, name, lines):
    """Write UTF-8 lines ending in LF; returns the path."""
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        for line in lines:
            f.write(line.encode("utf-8") + b"\n")
    return path


def run(client, bad_client, workdir):
    """Yield (step label, check function) in order."""
    state = {}

    def update_job():
        lines = [json.dumps(line, ensure_ascii=False, separators=(",", ":"))
                 for line in UPDATE_LINES]
        path = write_file(workdir, "interop-update.json", lines)
        state["update_job"] = submit_job(client, {"job": "update"}, "POST /job update", path)
        return "job_id %s" % state["update_job"]

    def poll_update_job():
        body = wait_for_job(client, state["update_job"])
        return "completed (%s)" % body.get("name", "no name")

    def read_users():
        for line in UPDATE_LINES[:2]:
            email = line["email"]
            body = expect_ok(client.api_get("user", {"id": email}), "GET /user %s" % email)
            got_vars = body.get("vars") or {}
            for var, value in line["vars"].items():
                expect_equal(got_vars.get(var), value, "var %r of %s" % (var, email))
            lists = body.get("lists") or {}
            if NEWSLETTER not in lists:
                raise CheckFailed("%s is not on %r: lists = %r" % (email, NEWSLETTER, lists))
        response = client.api_get("user", {"id": "not-an-email"})
        if error_with_extra_keys(response):
            raise CheckFailed("GET /user not-an-email: error body with keys other than "
                              "error/errormsg, which the client takes for success: %s"
                              % describe(response))
        if response.is_ok():
            raise CheckFailed("the invalid line made a profile: %r" % response.get_body())
        if client.get_last_rate_limit_info("user", "GET") is None:
            raise CheckFailed("GET /user answered without the X-Rate-Limit-* headers")
        return "vars and lists of 2 profiles, no profile for the invalid line"

    def bad_signature():
        response = bad_client.api_get("user", {"id": UPDATE_LINES[0]["email"]})
        expect_error(response, "GET /user signed with a wrong secret", 5, 401)
        return "error 5, HTTP 401"

    def import_jobs():
        job_id = submit_job(client, {"job": "import", "list": IMPORT_LIST,
                                     "emails": ",".join(IMPORT_EMAILS)},
                            "POST /job import (emails)")
        wait_for_job(client, job_id)
        expect_equal(list_count(client, IMPORT_LIST), len(IMPORT_EMAILS),
                     "count of %r" % IMPORT_LIST)
        path = write_file(workdir, "interop-import.txt", IMPORT_FILE_EMAILS)
        job_id = submit_job(client, {"job": "import", "list": IMPORT_FILE_LIST},
                            "POST /job import (file)", path)
        wait_for_job(client, job_id)
        expect_equal(list_count(client, IMPORT_FILE_LIST), len(IMPORT_FILE_EMAILS),
                     "count of %r" % IMPORT_FILE_LIST)
        return "counts 3 (emails) and 2 (file)"

    def unicode_list():
        expect_ok(client.api_post("list", {"list": UNICODE_LIST,
                                           "vars": {"motto": NON_ASCII_NAME}}),
                  "POST /list %r" % UNICODE_LIST)
        body = expect_ok(client.get_list(UNICODE_LIST, {"fields": {"vars": 1}}),
                         "GET /list %r" % UNICODE_LIST)
        expect_equal(body.get("list"), UNICODE_LIST, "name of the list read back")
        expect_equal((body.get("vars") or {}).get("motto"), NON_ASCII_NAME,
                     "var 'motto' of %r" % UNICODE_LIST)
        return "saved and read back"

    def unknown_job():
        response = client.api_get("job", {"job_id": UNKNOWN_JOB_ID})
        expect_error(response, "GET /job with an unknown job_id", 99, 400)
        return "error 99, HTTP 400"

    return [
        ("a. update job with a file", update_job),
        ("b. update job completes", poll_update_job),
        ("c. users read back", read_users),
        ("d. wrong secret refused", bad_signature),
        ("e. import jobs fill lists", import_jobs),
        ("f. non-ASCII list name and var", unicode_list),
        ("g. unknown job_id refused", unknown_job),
    ]


def main():
    missing = [name for name in ("SIM_URL", "SIM_API_KEY", "SIM_API_SECRET")
               if not os.environ.get(name)]
    if missing:
        sys.exit("interop: set %s (see the docstring of %s)"
                 % (", ".join(missing), os.path.basename(__file__)))
    # The client opens an upload in text mode with the locale's encoding and sends it re-encoded
    # as UTF-8: under any other encoding the non-ASCII line would reach the simulator garbled.
    encoding = locale.getpreferredencoding(False)
    if encoding.lower().replace("-", "") != "utf8":
        sys.exit("interop: the locale encoding is %s, not UTF-8; run with PYTHONUTF8=1" % encoding)

    url = os.environ["SIM_URL"].rstrip("/")  # the client appends "/" + action
    key = os.environ["SIM_API_KEY"]
    secret = os.environ["SIM_API_SECRET"]
    client = SailthruClient(key, secret, api_url=url)
    bad_client = SailthruClient(key, secret + "-wrong", api_url=url)

    passed = 0
    with tempfile.TemporaryDirectory(prefix="sailthru-interop-") as workdir:
        steps = run(client, bad_client, workdir)
        for label, check in steps:
            try:
                detail = check()
            except CheckFailed as e:
                failure = str(e)
            except SailthruClientError as e:  # connection refused, timeout, ...
                failure = "the client could not reach %s: %s" % (url, e)
            else:
                passed += 1
                print("ok    %s: %s" % (label, detail), flush=True)
                continue
            print("FAIL  %s: %s" % (label, failure), flush=True)
            print("interop: %d passed, 1 failed" % passed, flush=True)
            return 1
    print("interop: %d passed, 0 failed" % passed, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

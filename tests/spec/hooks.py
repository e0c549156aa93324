"""Schemathesis hooks for scripts/api_spec_test.sh (loaded via SCHEMATHESIS_HOOKS).

They keep the generated traffic bounded and the single test node usable,
without making docs/api_spec.yaml lie about what the server accepts:

* Long polls are shortened. `/locks/acquire` and `/queue/consume` accept a
  `wait_ms` up to 300000 (5 minutes); a valid integer above WAIT_CAP_MS is
  lowered to WAIT_CAP_MS just before the request is sent. Invalid values
  (negative, too big, wrong type) are sent untouched, so the server's
  validation is still tested. A lowered wait still exercises the blocking
  path: a taken lock answers 408 `timeout` after the wait.

* `/cluster/add` never adds a new member. On a one-node cluster, adding a
  node that is not running makes the membership change wait for it and
  leaves the cluster without a quorum (see the report for this bug), so every
  later request would answer 503. A body whose `node_id` the server would
  accept as a new member gets `node_id` "node1" (this node) instead: the
  server still parses and validates the whole body (the `addr` check runs
  before the membership check) and answers 400 "already a member" or, with
  node1's own address, 200 without a change. The positive path (a real
  node joining) is covered by the Rust cluster tests, not here.

* `/cluster/remove` needs no hook: removing node1 (the only voter) is 400
  "new membership can not be empty", any other id is 400 "not a member".
"""

import re

import schemathesis

WAIT_CAP_MS = 50
WAIT_MAX_MS = 300_000
NODE_NAME = re.compile(r"node0*[1-9][0-9]*")  # N >= 1, as the server reads it
SELF = "node1"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


@schemathesis.hook
def before_call(context, case, **kwargs):
    path = case.operation.path
    body = case.body
    if not isinstance(body, dict):
        return
    if path in ("/locks/acquire", "/queue/consume"):
        wait = body.get("wait_ms")
        if _is_int(wait) and WAIT_CAP_MS < wait <= WAIT_MAX_MS:
            body["wait_ms"] = WAIT_CAP_MS
    elif path == "/cluster/add":
        node_id = body.get("node_id")
        if isinstance(node_id, str) and NODE_NAME.fullmatch(node_id):
            body["node_id"] = SELF

"""Locust load scenarios for a dsync cluster's HTTP API.

Three kinds of simulated clients, mixed by weight:

* LockUser (weight 3): short transactions on distributed locks. Acquire a
  resource (mostly exclusive, some shared) with a lease (`ttl_ms`) and a short
  wait, do some "work", release; now and then renew the owner's leases, take
  two locks in random order (which can deadlock), or look a lock up. A third
  of the acquires go to a handful of hot resources, so there is contention:
  409 `conflict` (try-lock, `wait_ms` 0), 408 `timeout` (the wait ran out) and
  409 `deadlock` are expected outcomes and count as successes.
* QueueUser (weight 2): producers and consumers on a few queues. Produce one
  message or a small batch (some with an ordering `key`), consume up to 5
  with a visibility timeout and a short long-poll, ack most, nack some (with
  an occasional delay), read queue stats.
* CacheUser (weight 5): a read-heavy coherent-cache workload, ~90% get / ~10%
  put over Zipf-distributed keys (a few hot keys take most traffic), with an
  occasional invalidate. A get of a key never written is 404 `not_found`, an
  expected outcome; the user then fills it (cache-aside), so the share of
  puts is a little above 10% while the key space warms up.

Requests are spread over several nodes: each request goes to a node picked at
random among `--host` and the comma-separated base URLs in DSYNC_ENDPOINTS
(every node serves every route; followers forward writes to the leader).
Stats are grouped by route (`/locks/acquire`, `/queue/consume`, ...). At the
end, a "contract outcomes" table counts what the answers meant (lock granted /
conflict / timeout / deadlock, cache hit / miss / not_found, consume with
messages / empty); it is printed to the log and not mixed into the route stats.

Run it headless against a local three-node cluster:

    cargo build --release -p dsync-server --bin dsync
    target/release/dsync cluster --base-port 8001 --data-dir /tmp/dsync-load &
    python3 -m venv .venv && .venv/bin/pip install -r benches/requirements-locust.txt
    DSYNC_ENDPOINTS=http://127.0.0.1:8002,http://127.0.0.1:8003 \\
      .venv/bin/locust -f benches/locustfile.py --headless -u 50 -r 10 -t 60s \\
      --host http://127.0.0.1:8001

Add `--csv out/load` for CSV stats, or leave out `--headless` for the web UI.
Pick user classes by name (e.g. `... CacheUser`) to load one subsystem only.
Tunables (environment): DSYNC_HOT_LOCKS (5), DSYNC_LOCKS (1000),
DSYNC_QUEUES (4), DSYNC_CACHE_KEYS (1000), DSYNC_ZIPF_S (1.1).
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import random
import time
import uuid

from locust import FastHttpUser, between, events, tag, task

HOT_LOCKS = int(os.environ.get("DSYNC_HOT_LOCKS", "5"))
LOCKS = int(os.environ.get("DSYNC_LOCKS", "1000"))
QUEUES = int(os.environ.get("DSYNC_QUEUES", "4"))
CACHE_KEYS = int(os.environ.get("DSYNC_CACHE_KEYS", "1000"))
ZIPF_S = float(os.environ.get("DSYNC_ZIPF_S", "1.1"))

# Cumulative Zipf weights over key ranks 1..CACHE_KEYS: rank r has weight 1/r^s.
_ZIPF_CUM = list(itertools.accumulate(1.0 / (rank**ZIPF_S) for rank in range(1, CACHE_KEYS + 1)))
_CACHE_KEY_NAMES = [f"item:{i}" for i in range(CACHE_KEYS)]


def endpoints(host: str | None) -> list[str]:
    """`--host` plus DSYNC_ENDPOINTS, without duplicates or trailing slashes."""
    urls = [host or ""] + os.environ.get("DSYNC_ENDPOINTS", "").split(",")
    seen: list[str] = []
    for url in urls:
        url = url.strip().rstrip("/")
        if url and url not in seen:
            seen.append(url if "://" in url else f"http://{url}")
    if not seen:
        raise SystemExit("no endpoint: give --host and/or DSYNC_ENDPOINTS")
    return seen


def error_code(response) -> str | None:
    """The contract's error code of a response (`{"error":{"code":...}}`), if any."""
    try:
        body = json.loads(response.text or "")
    except (ValueError, TypeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


# Contract outcomes: name -> [count, total latency in ms].
OUTCOMES: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])


def outcome(name: str, started: float) -> None:
    """Counts one contract outcome (e.g. "lock conflict") with its request's latency."""
    entry = OUTCOMES[name]
    entry[0] += 1
    entry[1] += (time.perf_counter() - started) * 1000.0


@events.test_start.add_listener
def _reset_outcomes(environment, **_kwargs) -> None:
    OUTCOMES.clear()


@events.test_stop.add_listener
def _report_outcomes(environment, **_kwargs) -> None:
    if not OUTCOMES:
        return
    lines = ["contract outcomes:", f"  {'outcome':<22}{'count':>9}{'share':>8}{'avg ms':>9}"]
    for group in ("lock", "queue", "cache"):
        names = sorted(n for n in OUTCOMES if n.startswith(group))
        total = sum(OUTCOMES[n][0] for n in names) or 1
        for name in names:
            count, latency = OUTCOMES[name]
            lines.append(f"  {name:<22}{count:>9}{count / total:>8.1%}{latency / max(count, 1):>9.1f}")
    logging.info("\n".join(lines))


class DsyncUser(FastHttpUser):
    """Shared plumbing: pick a node per request, judge answers by the contract."""

    abstract = True
    # Long polls (lock waits, consume waits) stay well under this.
    network_timeout = 30.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        self.nodes = endpoints(self.host)

    def call(self, method: str, route: str, *, body=None, params=None, expected=()):
        """Sends one request to a random node; returns (status, JSON body of a 200, error code).

        200 is a success; so is a status whose error code is listed in
        `expected` (e.g. ("conflict", "timeout")). Anything else (a 5xx, a
        503 `unavailable`, a 400 for input this file thinks valid) is a
        failure in the stats, with the answer's text.
        """
        url = random.choice(self.nodes) + route
        kwargs = {"name": route, "catch_response": True}
        if body is not None:
            kwargs["json"] = body
        if params:
            kwargs["params"] = params
        with self.client.request(method, url, **kwargs) as response:
            status = response.status_code
            data, code = None, None
            if status == 200:
                try:
                    data = response.json()
                except ValueError:
                    response.failure("200 without a JSON body")
                    return status, None, None
                response.success()
            else:
                code = error_code(response)
                if status and code in expected:
                    response.success()
                else:
                    response.failure(f"{status}: {(response.text or '')[:200]}")
            return status, data, code


class LockUser(DsyncUser):
    """Short lock-protected transactions, some on hot resources."""

    weight = 3
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        super().on_start()
        self.client_id = uuid.uuid4().hex[:8]
        self.txn = itertools.count(1)

    def owner(self) -> str:
        return f"txn-{self.client_id}-{next(self.txn)}"

    @staticmethod
    def resource() -> str:
        if random.random() < 0.3:
            return f"hot:{random.randrange(HOT_LOCKS)}"
        return f"res:{random.randrange(LOCKS)}"

    def acquire(self, resource: str, owner: str, *, mode: str, wait_ms: int, ttl_ms: int = 5000) -> bool:
        started = time.perf_counter()
        status, data, code = self.call(
            "POST",
            "/locks/acquire",
            body={"resource": resource, "owner": owner, "mode": mode, "ttl_ms": ttl_ms, "wait_ms": wait_ms},
            expected=("conflict", "timeout", "deadlock"),
        )
        if status == 200 and data and data.get("granted"):
            outcome("lock granted", started)
            return True
        if code in ("conflict", "timeout", "deadlock"):
            outcome(f"lock {code}", started)
        return False

    def release(self, resource: str, owner: str) -> None:
        self.call("POST", "/locks/release", body={"resource": resource, "owner": owner})

    @task(10)
    @tag("locks")
    def lock_work_release(self) -> None:
        owner = self.owner()
        resource = self.resource()
        mode = "shared" if random.random() < 0.2 else "exclusive"
        # A quarter are try-locks (409 conflict when taken), the rest wait a little.
        wait_ms = 0 if random.random() < 0.25 else random.choice((50, 100, 250))
        if not self.acquire(resource, owner, mode=mode, wait_ms=wait_ms):
            return
        time.sleep(random.uniform(0.005, 0.05))  # the protected work
        if random.random() < 0.1:
            self.call("POST", "/locks/renew", body={"owner": owner, "ttl_ms": 5000})
            time.sleep(random.uniform(0.005, 0.02))
        self.release(resource, owner)

    @task(2)
    @tag("locks")
    def two_lock_transaction(self) -> None:
        """Two hot locks in random order: the classic deadlock shape."""
        owner = self.owner()
        first, second = random.sample([f"hot:{i}" for i in range(HOT_LOCKS)], 2)
        held = []
        try:
            for resource in (first, second):
                if not self.acquire(resource, owner, mode="exclusive", wait_ms=300):
                    return
                held.append(resource)
                time.sleep(random.uniform(0.005, 0.02))
        finally:
            for resource in reversed(held):
                self.release(resource, owner)

    @task(1)
    @tag("locks")
    def inspect(self) -> None:
        if random.random() < 0.5:
            self.call("GET", "/locks", params={"resource": f"hot:{random.randrange(HOT_LOCKS)}", "consistency": "local"})
        else:
            self.call("GET", "/locks/wait_for", params={"consistency": "local"})


class QueueUser(DsyncUser):
    """Producers and consumers on a few shared queues."""

    weight = 2
    wait_time = between(0.05, 0.3)

    def on_start(self) -> None:
        super().on_start()
        self.consumer = f"worker-{uuid.uuid4().hex[:8]}"
        self.seq = itertools.count(1)

    @staticmethod
    def queue() -> str:
        return f"orders-{random.randrange(QUEUES)}"

    def message(self) -> dict:
        return {"order": next(self.seq), "sku": f"sku-{random.randrange(500)}", "qty": random.randint(1, 5)}

    @task(5)
    @tag("queue")
    def produce_one(self) -> None:
        body = {"queue": self.queue(), "message": self.message()}
        if random.random() < 0.3:
            body["key"] = f"cust-{random.randrange(50)}"
        self.call("POST", "/queue/produce", body=body)

    @task(2)
    @tag("queue")
    def produce_batch(self) -> None:
        batch = [self.message() for _ in range(random.randint(2, 10))]
        self.call("POST", "/queue/produce", body={"queue": self.queue(), "messages": batch})

    @task(6)
    @tag("queue")
    def consume_ack_nack(self) -> None:
        queue = self.queue()
        started = time.perf_counter()
        status, data, _ = self.call(
            "POST",
            "/queue/consume",
            body={"queue": queue, "consumer": self.consumer, "max": 5, "visibility_ms": 10000, "wait_ms": 100},
        )
        messages = (data or {}).get("messages") or []
        if status != 200:
            return
        outcome("queue consumed" if messages else "queue empty", started)
        if not messages:
            return
        time.sleep(random.uniform(0.002, 0.02))  # process them
        ack, nack = [], []
        for message in messages:
            (nack if random.random() < 0.1 else ack).append(message["id"])
        if ack:
            self.call("POST", "/queue/ack", body={"queue": queue, "ids": ack})
        if nack:
            delay = 0 if random.random() < 0.5 else random.randint(100, 1000)
            self.call("POST", "/queue/nack", body={"queue": queue, "ids": nack, "delay_ms": delay})

    @task(1)
    @tag("queue")
    def stats(self) -> None:
        self.call("GET", "/queue/stats", params={"queue": self.queue(), "consistency": "local"}, expected=("not_found",))


class CacheUser(DsyncUser):
    """Zipf-distributed keys, ~90% get / ~10% put, occasional invalidate."""

    weight = 5
    wait_time = between(0.01, 0.1)

    @staticmethod
    def key() -> str:
        return random.choices(_CACHE_KEY_NAMES, cum_weights=_ZIPF_CUM, k=1)[0]

    @task(90)
    @tag("cache")
    def get(self) -> None:
        started = time.perf_counter()
        key = self.key()
        status, data, code = self.call("GET", "/cache/get", params={"key": key}, expected=("not_found",))
        if status == 200 and data is not None:
            outcome("cache hit" if data.get("hit") else "cache miss", started)
        elif code == "not_found":
            outcome("cache not_found", started)
            self.put_value(key)  # cache-aside: load from the "origin", fill

    @task(10)
    @tag("cache")
    def put(self) -> None:
        self.put_value(self.key())

    def put_value(self, key: str) -> None:
        value = {"updated_ms": int(time.time() * 1000), "blob": "x" * random.randint(16, 512)}
        self.call("POST", "/cache/put", body={"key": key, "value": value})

    @task(1)
    @tag("cache")
    def invalidate(self) -> None:
        self.call("POST", "/cache/invalidate", body={"key": self.key()}, expected=("not_found",))

"""Open-loop load generator for bench_api.py: one endpoint at one fixed rate, in its own process.

Request ``i`` is *scheduled* at ``t0 + i / rate`` whatever happened to the requests before it
(open loop), and its latency is measured from that scheduled time to the last byte of the
answer, so a server that falls behind is charged for the queue it builds (no coordinated
omission). Requests go over a pool of persistent HTTP/1.1 connections; a request that finds
every connection busy waits for one, and that wait counts too.

The default client writes HTTP/1.1 on asyncio streams itself (uvloop when installed): about
0.1 ms of CPU a request here, against about 1 ms for ``httpx.AsyncClient`` (``--client
httpx``), which matters when generator and server share two cores. Answers must carry
Content-Length (uvicorn's JSON answers do); anything else is counted as an error.

Writes one JSON document (``--out``, default stdout): latencies in ms from the scheduled time,
status counts, transport errors, the generator's own send lag and CPU seconds, and for
decisions the server's ``latency_ms``, fallbacks, arms and offers presented.

    python bench/bench_api_load.py --url http://127.0.0.1:8765 --endpoint decisions
        --rate 500 --seconds 20 --customers 1000000 --key qm_... [--out result.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CATEGORIES = (
    "dining", "supermarket", "ecommerce", "transport", "fuel", "travel", "hotel", "airline",
    "home", "electronics", "apparel", "baby", "education", "health", "entertainment",
)  # fmt: skip
PAGES = (
    "card_travel", "travel_deals", "card_platinum", "instalment", "limit", "loan",
    "wealth_list", "wealth_fund", "insurance", "home_deals", "baby_deals", "dining_deals",
)  # fmt: skip
ENDPOINTS = {"decisions": ("POST", "/v1/decisions"), "live": ("GET", "/v1/health/live")}

Send = Callable[[bytes], Awaitable[tuple[int, bytes]]]


def decision_body(rng: random.Random, customers: int, event_share: float) -> dict[str, Any]:
    """One in-app banner request for a random customer, with a triggering event sometimes."""
    body: dict[str, Any] = {
        "customer_id": rng.randint(1, customers),
        "channel": "in_app",
        "placement": "home_banner",
    }
    if rng.random() < event_share:
        kind = rng.choice(("transaction", "transaction", "login", "page_view"))
        if kind == "transaction":
            amount = round(min(rng.lognormvariate(6.5, 1.2), 80_000.0), 2)
            body["event"] = {"type": kind, "amount": amount, "category": rng.choice(CATEGORIES)}
        elif kind == "page_view":
            body["event"] = {"type": kind, "page": rng.choice(PAGES)}
        else:
            body["event"] = {"type": kind}
    return body


class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams (Content-Length answers only)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = None
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise ConnectionError(f"answer without Content-Length: {head[:200]!r}")
            return status, await self.reader.readexactly(length)
        except BaseException:
            self.close()  # the stream's state is unknown: start afresh next time
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def raw_request(method: str, host: str, path: str, key: str | None, body: bytes | None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if key:
        head.append(f"X-API-Key: {key}")
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


@dataclass
class Results:
    """What one run measured (see the module docstring)."""

    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    arms: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lag_ms: list[float] = field(default_factory=list)
    fallbacks: int = 0
    presented: int = 0
    first_fallback_reason: str | None = None

    def note_decision(self, payload: bytes) -> None:
        answer = json.loads(payload)
        if answer.get("latency_ms") is not None:
            self.server_ms.append(float(answer["latency_ms"]))
        self.arms[str(answer.get("arm"))] += 1
        if answer.get("fallback"):
            self.fallbacks += 1
            self.first_fallback_reason = self.first_fallback_reason or answer.get("fallback_reason")
        if answer.get("offers"):
            self.presented += 1


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Send ``rate × seconds`` requests on schedule; gather what came back."""
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    method, path = ENDPOINTS[args.endpoint]
    rng = random.Random(args.seed)
    n = round(args.rate * args.seconds)
    bodies = [
        json.dumps(decision_body(rng, args.customers, args.event_share)).encode()
        if args.endpoint == "decisions"
        else None
        for _ in range(n)
    ]
    senders = await _senders(args, host, port, method, path)
    pool: asyncio.Queue[Send] = asyncio.Queue()
    for s in senders:
        pool.put_nowait(s)
    out = Results()
    ends: list[float] = []

    async def one(i: int, scheduled: float) -> None:
        send = await pool.get()
        try:
            status, payload = await send(bodies[i] or b"")
        except Exception as e:  # a transport failure is a result, not a crash
            out.errors[type(e).__name__] += 1
            return
        finally:
            pool.put_nowait(send)
        done = time.perf_counter()
        ends.append(done)
        out.latencies_ms.append((done - scheduled) * 1e3)
        out.statuses[str(status)] += 1
        if status == 200 and args.endpoint == "decisions":
            out.note_decision(payload)

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    # perf_counter, not loop.time(): uvloop's clock moves in whole milliseconds. Timers still
    # fire at millisecond granularity, so a request may leave up to ~1 ms late: that lag is
    # reported, and counted in its latency.
    t0 = time.perf_counter() + 0.05
    tasks = []
    for i in range(n):
        scheduled = t0 + i / args.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        out.lag_ms.append(max(0.0, time.perf_counter() - scheduled) * 1e3)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=args.seconds + 60)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for s in senders:
        close = getattr(s, "aclose", None)
        if close is not None:
            await close()
    wall = (max(ends) - t0) if ends else float("nan")
    return {
        "endpoint": args.endpoint,
        "rate": args.rate,
        "sent": n,
        "wall_seconds": wall,
        "latencies_ms": out.latencies_ms,
        "server_ms": out.server_ms,
        "statuses": dict(out.statuses),
        "errors": dict(out.errors),
        "arms": dict(out.arms),
        "fallbacks": out.fallbacks,
        "first_fallback_reason": out.first_fallback_reason,
        "presented": out.presented,
        "send_lag_ms": {
            "p50": _percentile(out.lag_ms, 50),
            "p99": _percentile(out.lag_ms, 99),
            "max": max(out.lag_ms, default=0.0),
        },
        "generator_cpu_seconds": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "client": args.client,
        "connections": args.connections,
    }


async def _senders(
    args: argparse.Namespace, host: str, port: int, method: str, path: str
) -> list[Any]:
    """``args.connections`` callables ``send(body) -> (status, payload)``, connected."""
    if args.client == "httpx":
        import httpx

        client = httpx.AsyncClient(
            base_url=args.url,
            headers={"X-API-Key": args.key} if args.key else {},
            limits=httpx.Limits(
                max_connections=args.connections, max_keepalive_connections=args.connections
            ),
            timeout=30.0,
        )

        async def send_httpx(body: bytes) -> tuple[int, bytes]:
            if method == "POST":
                r = await client.post(
                    path, content=body, headers={"Content-Type": "application/json"}
                )
            else:
                r = await client.get(path)
            return r.status_code, r.content

        send_httpx.aclose = client.aclose  # type: ignore[attr-defined]  # closed once at the end
        # one client, many slots: the pool then only bounds the requests in flight
        return [send_httpx] * args.connections
    netloc = f"{host}:{port}"
    senders = []
    for _ in range(args.connections):
        conn = RawConnection(host, port)
        # connect now, outside the measured schedule
        await conn.send(raw_request("GET", netloc, "/v1/health/live", None, None))

        def send_raw(body: bytes, conn: RawConnection = conn) -> Awaitable[tuple[int, bytes]]:
            payload = body if method == "POST" else None
            return conn.send(raw_request(method, netloc, path, args.key, payload))

        senders.append(send_raw)
    return senders


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8765")
    ap.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="decisions")
    ap.add_argument("--rate", type=float, required=True, help="requests per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--customers", type=int, default=1_000_000, help="ids drawn from 1..N")
    ap.add_argument("--key", default=None, help="API key (X-API-Key) for decisions")
    ap.add_argument("--event-share", type=float, default=0.3, help="requests with an event")
    ap.add_argument("--connections", type=int, default=64, help="persistent connections")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the JSON here (default stdout)")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    try:
        import uvloop
    except ImportError:  # plain asyncio: a little more CPU per request
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    result["process_seconds"] = time.perf_counter() - started
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()

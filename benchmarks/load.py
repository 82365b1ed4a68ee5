"""Open-loop load on a real `bonecds serve`: requests per second and latency as an EHR sees them.

    python -m benchmarks.load                          # 150 rps for 30 s, 2 workers
    python -m benchmarks.load --rate 75 --workers 1 --duration 20
    python -m benchmarks.load --jti-only               # token verification cost vs live jti

It starts `bonecds serve --workers N` on 127.0.0.1 with a key generated here, then sends the
patient-view request of `tests/data/fhir/` (a synthetic patient) on a fixed schedule, whatever the
server's pace (open loop: a slow answer never delays the next send). Each request carries a
fresh ES384 JWT with its own `jti`, signed before the clock starts so the client's signing does
not compete for the CPU while measuring. Latency runs from the scheduled send time to the last
byte of the answer, so queueing anywhere counts. A benchmark, not a test: nothing fails here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import psutil
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
REQUEST = ROOT / "tests" / "data" / "fhir" / "patient-view-request.json"
ISS = "https://load.example/"
KID = "load-es384"
WARM_UP_S = 3.0


@dataclass
class Served:
    """A `bonecds serve` subprocess on loopback, and what a client needs to call it."""

    base: str
    key: ec.EllipticCurvePrivateKey
    log: Path
    process: subprocess.Popen[bytes]

    def token(self, path: str, **claims: Any) -> str:
        return sign(self.key, f"{self.base}{path}", **claims)


def sign(key: ec.EllipticCurvePrivateKey, aud: str, **claims: Any) -> str:
    """A CDS client's JWT with a new jti; `claims` override or add claims."""
    now = int(time.time())
    body = {"iss": ISS, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    return jwt.encode(body | claims, key, algorithm="ES384", headers={"kid": KID, "typ": "JWT"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(workers: int, extra: tuple[str, ...] = ()) -> Iterator[Served]:
    """Start `bonecds serve` with a throwaway key, database and log; stop it afterwards."""
    key = ec.generate_private_key(ec.SECP384R1())
    with tempfile.TemporaryDirectory(prefix="bonecds-serve-") as folder:
        home = Path(folder)
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        jwks = {"keys": [{**public, "kid": KID, "alg": "ES384", "use": "sig"}]}
        (home / "jwks.json").write_text(json.dumps(jwks))
        issuers = {"issuers": [{"iss": ISS, "jwks_file": "jwks.json"}]}
        (home / "issuers.json").write_text(json.dumps(issuers))
        port = free_port()
        command = [sys.executable, "-m", "bonecds", "serve", "--port", str(port)]
        command += ["--workers", str(workers), "--rules", str(ROOT / "rules")]
        command += ["--trusted-issuers", str(home / "issuers.json")]
        command += ["--database", str(home / "service.sqlite3"), *extra]
        log = home / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=sink)
        try:
            _wait_started(log, workers, process)
            yield Served(f"http://127.0.0.1:{port}", key, log, process)
        finally:
            process.terminate()
            process.wait(30)


def _wait_started(log: Path, workers: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while log.read_text(errors="replace").count("Application startup complete") < workers:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"bonecds serve did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def exchange(port: int, raw: bytes, timeout: float) -> tuple[int, bytes]:
    """Send one raw request on a new connection: the status (0 when none came) and the body."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(raw)
        answer = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    return (int(status[1]) if len(status) > 1 and status[1].isdigit() else 0), body


@dataclass
class Result:
    latencies_ms: list[float]
    errors: int
    sent: int
    seconds: float


async def _open_loop(port: int, raws: list[bytes], rate: float) -> list[Result]:
    """Send raws[i] at start + i/rate; the warm-up part and the measured part separately."""
    warm = int(WARM_UP_S * rate)
    outcomes: list[tuple[float, bool]] = [(0.0, False)] * len(raws)
    loop = asyncio.get_running_loop()

    async def one(index: int, scheduled: float) -> None:
        try:
            status, _ = await exchange(port, raws[index], timeout=10)
        except (OSError, TimeoutError):
            status = 0
        outcomes[index] = ((loop.time() - scheduled) * 1000, status == 200)

    start = loop.time() + 0.1
    tasks = []
    for index in range(len(raws)):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    await asyncio.gather(*tasks)
    return [
        Result(
            [ms for ms, ok in part if ok],
            sum(not ok for _, ok in part),
            len(part),
            len(part) / rate,
        )
        for part in (outcomes[:warm], outcomes[warm:])
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run_load(workers: int, rate: float, duration: float) -> dict[str, float]:
    body = json.loads(REQUEST.read_text())
    count = int((WARM_UP_S + duration) * rate)
    path = "/cds-services/bonecds-patient-view"
    with serve(workers) as served:
        raws = []
        for _ in range(count):  # a fresh token and hookInstance per request, signed up front
            body["hookInstance"] = str(uuid.uuid4())
            headers = {"Authorization": f"Bearer {served.token(path)}"}
            headers["Content-Type"] = "application/json"
            raws.append(http_request("POST", path, headers, json.dumps(body).encode()))
        port = int(served.base.rsplit(":", 1)[1])
        cpu_before = _server_cpu_s(served)
        _, measured = asyncio.run(_open_loop(port, raws, rate))
        cpu_ms = (_server_cpu_s(served) - cpu_before) * 1000 / len(raws)
    ok = measured.latencies_ms
    return {
        "workers": workers,
        "offered rps": rate,
        "answered rps": len(ok) / measured.seconds,
        "p50 ms": statistics.median(ok) if ok else float("nan"),
        "p99 ms": percentile(ok, 0.99),
        "max ms": max(ok, default=float("nan")),
        "errors": measured.errors,
        "requests": measured.sent,
        "server CPU ms": cpu_ms,
    }


def _server_cpu_s(served: Served) -> float:
    """CPU seconds used so far by `bonecds serve` and its workers: a figure that other load on
    the machine does not inflate, unlike latency."""
    parent = psutil.Process(served.process.pid)
    processes = [parent, *parent.children(recursive=True)]
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes)


def jti_scaling(live: tuple[int, ...] = (0, 10_000, 36_000), calls: int = 600) -> dict[int, float]:
    """Median microseconds of one token verification with that many live jti in the table,
    the sizes interleaved call by call so that other load on the machine hits them alike."""
    from bonecds.cds_hooks._feedback import open_store
    from bonecds.cds_hooks.auth import TokenVerifier, TrustedIssuer

    key = ec.generate_private_key(ec.SECP384R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    issuer = TrustedIssuer(ISS, {"keys": [{**public, "kid": KID, "alg": "ES384"}]})
    aud = "https://bonecds.example/cds-services"
    with tempfile.TemporaryDirectory() as folder:
        verifiers, stores = {}, []
        for size in live:
            store = open_store(Path(folder) / f"{size}.sqlite3")
            rows = [(ISS, f"live-{n}", time.time() + 600) for n in range(size)]
            with sqlite3.connect(store.database.target) as db:
                db.executemany("INSERT INTO jwt_replay VALUES (?, ?, ?)", rows)
            verifiers[size] = TokenVerifier((issuer,), store)
            stores.append(store)
        times: dict[int, list[float]] = {size: [] for size in live}
        for _ in range(calls):
            for size, verifier in verifiers.items():
                text = sign(key, aud)
                started = time.perf_counter()
                assert verifier.verify(text, [aud]) is None
                times[size].append((time.perf_counter() - started) * 1e6)
        for store in stores:
            store.close()
    return {size: statistics.median(found) for size, found in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, nargs="+", default=[150.0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--jti-only", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    scaling = jti_scaling()
    base = scaling[0]
    print("| live jti | verification, median µs | vs none |\n|---|---|---|")
    for size, micro in scaling.items():
        print(f"| {size:,} | {micro:.0f} | {micro / base:.2f}x |")
    if args.jti_only:
        return
    print("\n| workers | offered rps | answered rps | p50 ms | p99 ms | max ms | errors |", end="")
    print(" server CPU per request |\n|---|---|---|---|---|---|---|---|")
    for workers in args.workers:
        for rate in args.rate:
            row = run_load(workers, rate, args.duration)
            print(
                f"| {workers} | {rate:.0f} | {row['answered rps']:.1f} | {row['p50 ms']:.1f}"
                f" | {row['p99 ms']:.1f} | {row['max ms']:.1f}"
                f" | {row['errors']:.0f} of {row['requests']:.0f}"
                f" | {row['server CPU ms']:.1f} ms |",
                flush=True,
            )
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

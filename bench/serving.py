"""What the benchmarks that serve the real thing share: the server's environment on a
database of their own, ``eppark`` commands against it, and percentiles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("EPPARK_BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def server_env(
    db_name: str, secret: str, http_port: int, mqtt_port: int, gateway_password: str
) -> dict[str, str]:
    """``eppark serve`` as in the demo (embedded broker, the sandbox), on PostgreSQL."""
    env = dict(os.environ)
    env.pop("MQTT_URL", None)  # the embedded broker, as in the demo
    for name in [n for n in env if n.startswith(("EPPARK_WECHATPAY_", "EPPARK_ALIPAY_"))]:
        env.pop(name)  # no real provider: the sandbox takes the payments
    env.update(
        DATABASE_URL=f"{PG}/{db_name}",
        EPPARK_SECRET_KEY=secret,
        EPPARK_MQTT_GATEWAY_PASSWORD=gateway_password,
        EPPARK_MQTT_PORT=str(mqtt_port),
        EPPARK_LOG_LEVEL="ERROR",
        EPPARK_ALLOWED_HOSTS="127.0.0.1,localhost",
        EPPARK_PUBLIC_URL=f"http://127.0.0.1:{http_port}",
        EPPARK_SSL_REDIRECT="0",  # plain HTTP as in the demo (TLS is the proxy's in production)
    )
    return env


def eppark(env: dict[str, str], *args: str) -> str:
    """Run an ``eppark`` command against the bench database."""
    done = subprocess.run(
        [sys.executable, "-m", "eppark", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode:
        raise RuntimeError(f"eppark {' '.join(args)}: {done.stderr[-3000:]}")
    return done.stdout


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

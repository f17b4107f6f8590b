"""`rcgate login`: the workstation side of the device authorization flow.

It creates (once) the connector's key pair, asks the gateway for a user code, shows the URL and
the code (and a QR code) to the person, polls until they approve in a browser with a fresh factor,
and stores the short-lived SSH certificate and the gateway's endpoint in the config directory.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import segno

from gateway.connector.config import GatewayInfo, config_dir, ensure_key, save_certificate, save_gateway
from gateway.core.errors import BadRequest, Forbidden, Gone, Unavailable

HTTP_TIMEOUT_S = 10.0
MAX_WAIT_S = 15 * 60


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)) as r:
            data = await r.json(content_type=None)
            return r.status, data if isinstance(data, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise Unavailable(f"cannot reach the gateway at {url}: {exc}") from exc


async def login(
    gateway_url: str,
    *,
    directory: Path | None = None,
    out: TextIO = sys.stderr,
    host: str | None = None,
    show_qr: bool = True,
) -> GatewayInfo:
    """Run the flow; returns the stored gateway info once the certificate is saved."""
    d = directory or config_dir()
    base = gateway_url.rstrip("/")
    public_key = await asyncio.to_thread(ensure_key, d)
    host = host or socket.gethostname()
    async with aiohttp.ClientSession() as session:
        status, start = await _post(
            session, f"{base}/api/device/start", {"public_key": public_key, "host": host}
        )
        if status != 200:
            raise BadRequest(f"the gateway refused the login: {start.get('message', status)}")
        url = start["verification_uri_complete"]
        print(f"To connect this workstation ({host}) to rcgate, open:\n\n  {url}\n", file=out)
        print(f"and check that it shows the code  {start['user_code']}\n", file=out)
        if show_qr:
            segno.make(url, error="m").terminal(out=out, compact=True)
        print("Waiting for approval…", file=out, flush=True)
        interval = max(1, int(start.get("interval", 1)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(MAX_WAIT_S, int(start.get("expires_in", MAX_WAIT_S)))
        while loop.time() < deadline:
            await asyncio.sleep(interval)
            status, body = await _post(
                session, f"{base}/api/device/poll", {"device_code": start["device_code"]}
            )
            if status == 202:
                continue
            if status == 200:
                await asyncio.to_thread(save_certificate, body["certificate"], d)
                info = GatewayInfo(
                    url=base,
                    ssh_host=body["ssh_host"],
                    ssh_port=body["ssh_port"],
                    user=body["user"],
                    ssh_host_key=body.get("ssh_host_key"),
                )
                await asyncio.to_thread(save_gateway, info, d)
                print(f"Logged in as {info.user}; certificate stored in {d}", file=out)
                return info
            if status == 403:
                raise Forbidden(body.get("message", "the login was denied"))
            raise Gone(body.get("message", "the login request expired"))
    raise Gone("no approval within the time limit; run `rcgate login` again")

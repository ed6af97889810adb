"""The least an audited scan or verify can cost on this machine: same-run floors for issues 5 and 7.

``GET /floor/{token}`` does only the work no audited scan can skip, in as little Python as we could write:
check the ES256 signature and expiry of a presentation token, read the licence's row, append one audit entry
(RFC 8785-style sorted JSON, RFC 9162 leaf hash, HMAC holder reference) to an indexed SQLite table with
``synchronous=FULL`` in a group commit, sign a receipt (Ed25519) over index, leaf hash and time, and answer
only after the commit. ``POST /floor/verify`` does the same for the exchange verify: a read by identifier,
no code to check. It has none of the hub's middleware, SQLAlchemy, key rotation, status lists, disclosure
rules or error handling, so it is not a scan route anyone should ship: it is the yardstick that tells whether a
target is a matter of our code or of the machine.

Two shapes, chosen by ``FLOOR_MODE``:

- ``thread``: the hub's shape. One process; a committer thread takes every queued request, checks, commits and
  signs them as one batch, and wakes the event loop once per batch.
- ``process``: the committer in a child process of its own, fed over a Unix socket (requests one per line,
  answers length-prefixed, in order), so it has a GIL (and a core) of its own.

Written by hand rather than with PyJWT, SQLAlchemy and audit.committer.GroupCommitter on purpose: those are
what the hub uses, and the floor must show the cost of the work itself, not of the code around it.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import queue
import socket
import sqlite3
import struct
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pydantic_core
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fastapi import FastAPI
from fastapi.responses import Response

from bench.bare_app import VerifyBody, json_body_async, ping_async

SCANNED = "licence.presentation.scanned"
VERIFIED = "exchange.licence.verified"
SHAPES = ("thread", "process")  # FLOOR_MODE: committer thread (the hub's shape), committer process
FLOOR_LICENCES = 1000  # licence 1 is the scanned one; 2..1000 have identifier VERIFY_PREFIX + number
LICENCE_IDENTIFIER = "12350100MB1234567X0010000010001A"
VERIFY_PREFIX = "1.2.156.3005.2.FLOOR."
_FRAME = struct.Struct("!I")
_SCHEMA = """
create table if not exists licences (id integer primary key, identifier text not null, status text not null,
  holder_type text not null, holder_code text not null, validity_end text);
create table if not exists audit (leaf_index integer primary key, leaf_hash blob not null, time text not null,
  action text not null, outcome text not null, holder_ref text, identifier text, body blob not null);
create index if not exists audit_holder on audit (holder_ref, leaf_index);
create index if not exists audit_time on audit (time);
create index if not exists audit_identifier on audit (identifier);
create unique index if not exists licence_identifier on licences (identifier);
"""
_SEED = """insert or ignore into licences values (1, ?, 'valid', 'company', '91350100M000100Y43', '2030-12-31')"""
_SEED_VERIFIED = """with recursive n(i) as (select 2 union all select i + 1 from n where i < ?)
insert or ignore into licences select i, ? || i, 'valid', 'company', printf('91350100M%09d', i), '2030-12-31' from n"""

_COLUMNS = "id, identifier, status, holder_type, holder_code, validity_end"
_READ_BY_ID = f"select {_COLUMNS} from licences where id in (select value from json_each(?))"  # noqa: S608
_READ_BY_IDENTIFIER = f"select {_COLUMNS} from licences where identifier in (select value from json_each(?))"  # noqa: S608


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Base64url without padding (JWS segments, the floor's receipts) to bytes."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def receipt_message(leaf_index: int, leaf_hash: bytes, integrated_time: str) -> bytes:
    """What a floor receipt signs (the bench checks a warm-up answer's receipt against the published key)."""
    return leaf_index.to_bytes(8, "big") + leaf_hash + integrated_time.encode()


class Keys:
    """The floor's keys: the presentation key (ES256), the receipt key (Ed25519), the holder-reference key."""

    def __init__(self, raw: tuple[bytes, bytes, bytes] | None = None) -> None:
        if raw is None:
            es = ec.generate_private_key(ec.SECP256R1())
            es_der = es.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())  # fmt: skip
            raw = (es_der, ed25519.Ed25519PrivateKey.generate().private_bytes_raw(), os.urandom(32))
        self.raw = raw
        loaded = serialization.load_der_private_key(raw[0], None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        self.presentation = loaded
        self.receipts = ed25519.Ed25519PrivateKey.from_private_bytes(raw[1])
        self.holder = raw[2]

    def mint(self, lifetime_s: int = 300) -> str:
        """A presentation token for licence 1, like the hub's: header, claims, raw r‖s signature."""
        now = int(time.time())
        header = _b64e(json.dumps({"alg": "ES256", "kid": "floor", "typ": "JWT"}).encode())
        claims = {"iss": "http://floor", "lid": 1, "sub": LICENCE_IDENTIFIER, "type": "营业执照",
                  "disclosed": {"名称": "福州某某科技有限公司", "法定代表人": "张三"}, "idx": 7, "iat": now,
                  "exp": now + lifetime_s, "jti": _b64e(os.urandom(12))}  # fmt: skip
        payload = _b64e(json.dumps(claims, ensure_ascii=False).encode())
        r, s = decode_dss_signature(self.presentation.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256())))
        return f"{header}.{payload}.{_b64e(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class Committer:
    """Checks, records (one durable commit) and answers a batch of requests; the same code in both shapes."""

    def __init__(self, path: str, keys: Keys) -> None:
        self.keys = keys
        self.verifier = keys.presentation.public_key()
        self.ecdsa = ec.ECDSA(hashes.SHA256())
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self.db.execute(_SEED, (LICENCE_IDENTIFIER,))
        self.db.execute(_SEED_VERIFIED, (FLOOR_LICENCES, VERIFY_PREFIX))
        self.next_index: int = self.db.execute("select coalesce(max(leaf_index) + 1, 0) from audit").fetchone()[0]

    def _claims(self, token: str, now: int) -> dict[str, Any] | None:
        try:
            header, payload, signature = token.split(".")
            raw = b64url_decode(signature)
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            self.verifier.verify(der, f"{header}.{payload}".encode(), self.ecdsa)
            claims: dict[str, Any] = json.loads(b64url_decode(payload))
        except (ValueError, InvalidSignature):
            return None
        return claims if claims.get("exp", 0) > now else None

    def batch(self, requests: list[str]) -> list[bytes]:
        """One batch of ``s:<token>`` scans and ``v:<identifier>`` verifies: checked, read, committed, signed.

        Every code is checked, the batch's licences are read in one query per key, every request's entry
        is committed in one transaction, then each answer gets its signed receipt; answers keep the order.
        """
        now, stamp = int(time.time()), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        claims = {at: self._claims(r[2:], now) for at, r in enumerate(requests) if r.startswith("s:")}
        by_id = self._read(_READ_BY_ID, sorted({c["lid"] for c in claims.values() if c}), key=0)
        by_identifier = self._read(_READ_BY_IDENTIFIER, sorted({r[2:] for r in requests if r.startswith("v:")}), key=1)
        entries: list[tuple[Any, ...]] = []
        answers: list[dict[str, Any]] = []
        for at, request in enumerate(requests):
            if request.startswith("s:"):
                scanned = claims[at]
                licence = by_id.get(scanned["lid"]) if scanned else None
                verdict = ("valid" if licence[2] == "valid" else licence[2]) if licence else "bad_code"
                disclosed = scanned["disclosed"] if scanned and licence else {}
                extra: dict[str, Any] = {"verdict": verdict}
                action, actor_type, fields = SCANNED, "public", sorted(disclosed) or None
                answer: dict[str, Any] = {"verdict": verdict, "licence": None}
                if licence:
                    answer["licence"] = {"identifier": licence[1], "status": licence[2], "validity_end": licence[5]}
                    answer["licence"]["fields"] = disclosed
            else:
                licence = by_identifier.get(request[2:])
                action, actor_type, fields, extra = VERIFIED, "department", None, {}
                answer = {"certificate_identifier": request[2:], "status": licence[2] if licence else "not_found",
                          "valid_until": licence[5] if licence else None}  # fmt: skip
            entries.append(self._entry(len(entries), action, actor_type=actor_type, licence=licence, fields=fields,
                                       extra=extra, stamp=stamp))  # fmt: skip
            answers.append(answer)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("insert into audit values (?, ?, ?, ?, ?, ?, ?, ?)", entries)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.next_index += len(entries)
        out = []
        for (index, leaf, *_), answer in zip(entries, answers, strict=True):
            signature = self.keys.receipts.sign(receipt_message(index, leaf, stamp))
            answer["receipt"] = {"leaf_index": index, "leaf_hash": leaf.hex(), "integrated_time": stamp,
                                 "signature": _b64e(signature)}  # fmt: skip
            out.append(pydantic_core.to_json(answer))
        return out

    def _read(self, query: str, keys: list[Any], *, key: int) -> dict[Any, tuple[Any, ...]]:
        """The licence rows whose column ``key`` (0 id, 1 identifier) is in ``keys``, by that column."""
        if not keys:
            return {}
        return {row[key]: row for row in self.db.execute(query, (json.dumps(keys),))}

    def _entry(
        self,
        offset: int,
        action: str,
        *,
        actor_type: str,
        licence: tuple[Any, ...] | None,
        fields: list[str] | None,
        extra: dict[str, Any],
        stamp: str,
    ) -> tuple[Any, ...]:
        """An audit row: sorted-key JSON body, its RFC 9162 leaf hash, the HMAC holder reference."""
        holder_ref = None
        if licence:
            holder = f"{licence[3]}:{licence[4]}".encode()
            holder_ref = hmac.new(self.keys.holder, holder, hashlib.sha256).hexdigest()
        outcome = "ok" if licence else "denied"
        identifier = licence[1] if licence else None
        body = json.dumps(
            {"action": action, "actor": "anonymous" if actor_type == "public" else "floor", "actor_type": actor_type,
             "outcome": outcome, "time": stamp, "holder_ref": holder_ref, "certificate_identifier": identifier,
             "fields": fields, "extra": extra},
            sort_keys=True, separators=(",", ":"), ensure_ascii=False,
        ).encode()  # fmt: skip
        leaf = hashlib.sha256(b"\x00" + body).digest()
        return (self.next_index + offset, leaf, stamp, action, outcome, holder_ref, identifier, body)


class ThreadShape:
    """The hub's shape: a committer thread; the event loop is woken once per batch."""

    def __init__(self, path: str, keys: Keys) -> None:
        self.committer = Committer(path, keys)
        self.queue: queue.SimpleQueue[tuple[str, asyncio.Future[bytes]]] = queue.SimpleQueue()
        self.loop = asyncio.get_running_loop()
        threading.Thread(target=self._run, name="floor-committer", daemon=True).start()

    async def call(self, request: str) -> bytes:
        future: asyncio.Future[bytes] = self.loop.create_future()
        self.queue.put((request, future))
        return await future

    def _run(self) -> None:
        while True:
            batch = [self.queue.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self.queue.get_nowait())
            futures = [future for _, future in batch]
            try:
                answers: list[bytes] | BaseException = self.committer.batch([request for request, _ in batch])
            except Exception as exc:  # the batch's callers get a 500, not a hang
                logging.getLogger(__name__).exception("floor batch failed")
                answers = exc
            self.loop.call_soon_threadsafe(_settle, futures, answers)


def _settle(futures: list[asyncio.Future[bytes]], answers: list[bytes] | BaseException) -> None:
    for at, future in enumerate(futures):
        if future.done():
            continue
        if isinstance(answers, BaseException):
            future.set_exception(answers)
        else:
            future.set_result(answers[at])


def _serve_committer(path: str, raw: tuple[bytes, bytes, bytes], address: str, ready: Any) -> None:
    """The child process: read whatever lines have arrived, answer them as one batch, in order."""
    committer = Committer(path, Keys(raw))
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(address)
        listener.listen(1)
        ready.set()
        connection, _ = listener.accept()
    pending = b""
    with connection:
        while True:
            data = connection.recv(1 << 20)
            if not data:
                return
            pending += data
            if not pending.endswith(b"\n"):
                continue  # a line cut in two by the socket: wait for its end
            requests, pending = pending.decode().split("\n")[:-1], b""
            answers = committer.batch(requests)
            frames = b"".join(_FRAME.pack(len(answer)) + answer for answer in answers)
            connection.sendall(_FRAME.pack(len(frames)) + frames)


class ProcessShape:
    """The committer in a child process; every scan the loop has gathered in one turn goes in one write."""

    def __init__(self) -> None:
        self.waiting: collections.deque[asyncio.Future[bytes]] = collections.deque()
        self.outgoing: list[str] = []
        self.loop = asyncio.get_running_loop()

    async def start(self, path: str, keys: Keys, address: str) -> None:
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        self.child = context.Process(target=_serve_committer, args=(path, keys.raw, address, ready), daemon=True)
        self.child.start()
        if not await asyncio.to_thread(ready.wait, 30):
            raise RuntimeError("the floor's committer process did not start")
        self.reader, self.writer = await asyncio.open_unix_connection(address)
        self.reading = self.loop.create_task(self._read())

    async def call(self, request: str) -> bytes:
        future: asyncio.Future[bytes] = self.loop.create_future()
        self.waiting.append(future)
        if not self.outgoing:
            self.loop.call_soon(self._flush)
        self.outgoing.append(request)
        return await future

    def _flush(self) -> None:
        self.writer.write("\n".join(self.outgoing).encode() + b"\n")
        self.outgoing = []

    async def _read(self) -> None:
        try:
            await self._read_frames()
        finally:  # the child died or the socket broke: nobody waits forever
            _settle(list(self.waiting), RuntimeError("the floor's committer process is gone"))
            self.waiting.clear()

    async def _read_frames(self) -> None:
        while True:
            (size,) = _FRAME.unpack(await self.reader.readexactly(_FRAME.size))
            frames, at = await self.reader.readexactly(size), 0
            while at < size:
                (length,) = _FRAME.unpack_from(frames, at)
                future = self.waiting.popleft()
                if not future.done():
                    future.set_result(frames[at + 4 : at + 4 + length])
                at += 4 + length


_state: dict[str, Any] = {}


@contextlib.asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    keys = Keys()
    path = os.environ.get("FLOOR_DB", "floor.db")
    shape: ThreadShape | ProcessShape
    if os.environ.get("FLOOR_MODE", "thread") == "process":
        shape = ProcessShape()
        await shape.start(path, keys, os.environ.get("FLOOR_SOCKET", path + ".sock"))
    else:
        shape = ThreadShape(path, keys)
    _state.update(keys=keys, shape=shape)
    yield


app = FastAPI(lifespan=_lifespan)
app.get("/ping-async")(ping_async)  # the bare endpoints, for readiness checks and ad-hoc comparisons
app.post("/json-async")(json_body_async)


@app.get("/keys")
async def published_keys() -> dict[str, str]:
    """A fresh token (5 minutes) and the receipt key, for the bench's checks."""
    keys: Keys = _state["keys"]
    return {"token": keys.mint(), "receipt_key": _b64e(keys.receipts.public_key().public_bytes_raw())}


@app.get("/floor/{token}")
async def floor(token: str) -> Response:
    return Response(await _state["shape"].call(f"s:{token}"), media_type="application/json")


@app.post("/floor/verify")
async def floor_verify(body: VerifyBody) -> Response:
    """The exchange verify's floor: status and validity of a licence by identifier, audited, with a receipt."""
    return Response(await _state["shape"].call(f"v:{body.certificate_identifier}"), media_type="application/json")

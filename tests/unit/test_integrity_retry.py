"""Integrity checks on chunks, the retry policy and what counts as transient (no network)."""

from __future__ import annotations

import asyncio
import errno

import numpy as np
import pytest
import zarr
from numcodecs import Blosc

from gagebench.errors import ConfigError
from gagebench.storage.integrity import IntegrityError, VerifyingStore, check_blosc, check_decoded
from gagebench.storage.retry import RetryPolicy, StoreUnavailable, is_transient, retrying

CODEC = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)


def row(n: int = 2191) -> np.ndarray:
    return np.random.default_rng(0).gamma(2.0, 10.0, n).astype("float32")


def test_blosc_decodes_a_body_one_byte_short_into_wrong_values() -> None:
    # Why the check exists: numcodecs trusts the header and decodes a cut-off body.
    x = row()
    decoded = np.frombuffer(CODEC.decode(CODEC.encode(x)[:-1]), dtype="float32")
    assert decoded.size == x.size
    assert not np.array_equal(decoded, x)


@pytest.mark.parametrize("cut", [1, 2, 7, 100])
def test_check_blosc_refuses_a_short_body(cut: int) -> None:
    frame = CODEC.encode(row())
    check_blosc("k", frame, row().nbytes)
    with pytest.raises(IntegrityError, match="compressed bytes"):
        check_blosc("k", frame[:-cut], row().nbytes)


def test_check_blosc_refuses_a_frame_of_another_size() -> None:
    with pytest.raises(IntegrityError, match="decoded"):
        check_blosc("k", CODEC.encode(row(100)), row().nbytes)
    with pytest.raises(IntegrityError, match="shorter than a Blosc header"):
        check_blosc("k", b"\x02\x01", None)


def test_check_decoded_counts_elements() -> None:
    x = row(10)
    np.testing.assert_array_equal(check_decoded("k", x.tobytes(), 10, x.dtype), x)
    with pytest.raises(IntegrityError, match="expected 11 values"):
        check_decoded("k", x.tobytes(), 11, x.dtype)


def _store_with_chunks(tmp_path):
    path = str(tmp_path / "s.zarr")
    arr = zarr.create_array(
        path,
        shape=(2191, 3),
        chunks=(2191, 1),
        dtype="float32",
        zarr_format=2,
        compressors=CODEC,
    )
    data = np.stack([row(), row() * 2, row() * 3], axis=1)
    arr[:] = data
    return path, data


def test_verifying_store_refetches_and_never_decodes_a_short_chunk(tmp_path) -> None:
    path, data = _store_with_chunks(tmp_path)
    inner = zarr.storage.LocalStore(path, read_only=True)
    bad_key = "0.1"
    served: list[int] = []

    class Flaky(zarr.storage.WrapperStore):
        async def get(self, key, prototype, byte_range=None):
            buf = await self._store.get(key, prototype, byte_range)
            if key == bad_key and len(served) < 2:  # short twice, then whole
                served.append(1)
                return prototype.buffer.from_bytes(buf.to_bytes()[:-1])
            return buf

    store = VerifyingStore(Flaky(inner), RetryPolicy(max_attempts=5, max_wait_s=5))
    got = zarr.open_array(store, mode="r")[:]
    np.testing.assert_array_equal(got, data)
    assert len(served) == 2

    class AlwaysShort(Flaky):
        async def get(self, key, prototype, byte_range=None):
            buf = await self._store.get(key, prototype, byte_range)
            if key == bad_key:
                return prototype.buffer.from_bytes(buf.to_bytes()[:-1])
            return buf

    store = VerifyingStore(AlwaysShort(inner), RetryPolicy(max_attempts=3, max_wait_s=0.5))
    with pytest.raises(StoreUnavailable, match="compressed bytes"):
        zarr.open_array(store, mode="r")[:]


def test_fast_path_refetches_a_chunk_that_does_not_decode(tmp_path) -> None:
    from gagebench.sources.zarrio import read_gage_rows

    path, data = _store_with_chunks(tmp_path)
    inner = zarr.storage.LocalStore(path, read_only=True)
    calls = {"n": 0}

    class Garbled(zarr.storage.WrapperStore):
        policy = RetryPolicy(max_attempts=4, max_wait_s=2)

        async def get(self, key, prototype, byte_range=None):
            buf = await self._store.get(key, prototype, byte_range)
            if key == "0.2" and calls["n"] == 0:  # whole length, garbage inside
                calls["n"] += 1
                return prototype.buffer.from_bytes(b"\x00" * len(buf.to_bytes()))
            return buf

    arr = zarr.open_array(Garbled(inner), mode="r")
    got = read_gage_rows(arr, np.array([2, 0]), gage_axis=1)
    np.testing.assert_array_equal(got, data[:, [2, 0]].T)
    assert calls["n"] == 1


def _client_error(status: int, code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


def test_transient_errors() -> None:
    from botocore.exceptions import (
        EndpointConnectionError,
        FlexibleChecksumError,
        IncompleteReadError,
        NoCredentialsError,
    )

    assert is_transient(EndpointConnectionError(endpoint_url="http://x"))
    assert is_transient(FlexibleChecksumError(error_msg="crc32 mismatch"))
    assert is_transient(IncompleteReadError(actual_bytes=1, expected_bytes=2))
    assert is_transient(ConnectionRefusedError())
    assert is_transient(IntegrityError("short"))
    for status, code in ((503, "SlowDown"), (500, "InternalError"), (502, "502")):
        assert is_transient(_client_error(status, code))
        wrapped = OSError(errno.EBUSY, "busy")
        wrapped.__cause__ = _client_error(status, code)
        assert is_transient(wrapped)
    assert not is_transient(_client_error(403, "AccessDenied"))
    assert not is_transient(_client_error(404, "NoSuchKey"))
    assert not is_transient(FileNotFoundError("x"))
    assert not is_transient(PermissionError("x"))
    assert not is_transient(NoCredentialsError())
    assert not is_transient(ValueError("bad"))


def test_retrying_waits_within_the_budget_and_says_why_it_gave_up() -> None:
    policy = RetryPolicy(max_attempts=50, max_wait_s=0.6)
    calls = {"n": 0}

    async def down() -> None:
        calls["n"] += 1
        raise ConnectionRefusedError("refused")

    with pytest.raises(StoreUnavailable, match="outage") as info:
        asyncio.run(retrying(policy, down, "http://store"))
    assert 2 < calls["n"] < 50
    assert "max_wait_s" in str(info.value)
    with pytest.raises(StoreUnavailable, match=r"cannot be reached.*endpoint_url"):
        asyncio.run(retrying(policy, down, "http://store", answered=False))

    async def forbidden() -> None:
        calls["n"] = -1
        raise PermissionError("denied")

    with pytest.raises(PermissionError):
        asyncio.run(retrying(policy, forbidden, "x"))
    assert calls["n"] == -1

    outcomes: list[Exception | str] = [
        ConnectionRefusedError(),
        _client_error(503, "SlowDown"),
        "ok",
    ]

    async def flaky() -> str:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    assert asyncio.run(retrying(RetryPolicy(5, 10), flaky, "x")) == "ok"


def test_retry_policy_validation() -> None:
    assert RetryPolicy.from_mapping({"max_wait_s": 5}).max_wait_s == 5.0
    with pytest.raises(ConfigError, match=r"gagebench\.retries\.max_attempts"):
        RetryPolicy.from_mapping({"max_attempts": 0})
    with pytest.raises(ConfigError, match="unknown key"):
        RetryPolicy.from_mapping({"max_wait": 5})
    delays = [RetryPolicy(20, 1000).delay(a, 0) for a in range(1, 12)]
    assert all(d is not None and d <= 10 for d in delays)
    assert RetryPolicy(3, 100).delay(3, 0) is None
    assert RetryPolicy(30, 1.0).delay(1, 0.9) == pytest.approx(0.1, abs=0.1)

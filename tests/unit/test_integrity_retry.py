"""Integrity checks on chunks, the retry policy and what counts as transient (no network)."""

from __future__ import annotations

import asyncio
import errno
import hashlib

import numpy as np
import pytest
import zarr
from numcodecs import Blosc

from gagebench.errors import ConfigError, StorageError
from gagebench.storage.digests import IntegritySettings, verify_body
from gagebench.storage.integrity import (
    IntegrityError,
    UnverifiedObjectError,
    VerifyingStore,
    check_blosc,
    check_decoded,
    check_metadata,
    verified_store,
)
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
    with pytest.raises(
        ConfigError,
        match=r"unknown setting\(s\) gagebench\.retries\.max_wait; valid keys are: "
        r"batch_attempts, max_attempts, max_wait_s "
        r"\(did you mean gagebench\.retries\.max_wait_s\?\)",
    ):
        RetryPolicy.from_mapping({"max_wait": 5})
    delays = [RetryPolicy(20, 1000).delay(a, 0) for a in range(1, 12)]
    assert all(d is not None and d <= 10 for d in delays)
    assert RetryPolicy(3, 100).delay(3, 0) is None
    assert RetryPolicy(30, 1.0).delay(1, 0.9) == pytest.approx(0.1, abs=0.1)


# -- digests: checksum headers and MD5 ETags (gagebench.storage.digests) -------------------

BODY = b"a zarr chunk's bytes"
MD5 = hashlib.md5(BODY).hexdigest()  # the independent reference: hashlib itself


@pytest.mark.parametrize(
    ("headers", "checksum", "signals"),
    [
        ({"ETag": f'"{MD5}"'}, None, ("etag-md5",)),
        ({"etag": f'"{MD5.upper()}"'}, "crc32", ("crc32", "etag-md5")),
        ({"ETag": f'"{MD5}-3"'}, None, ()),  # multipart: not an MD5 of the bytes
        ({"ETag": f'"{MD5}-3"'}, "CRC32C", ("crc32c",)),
        ({"ETag": f'"{MD5}"', "x-amz-server-side-encryption": "aws:kms"}, None, ()),
        (
            {"ETag": f'"{MD5}"', "x-amz-server-side-encryption-customer-algorithm": "AES256"},
            None,
            (),
        ),
        ({"ETag": f'"{MD5}"', "x-amz-server-side-encryption": "AES256"}, None, ("etag-md5",)),
        ({}, None, ()),
    ],
)
def test_verify_body_uses_every_digest_the_store_gives(headers, checksum, signals) -> None:
    assert verify_body("s3://b/k", BODY, headers, checksum) == signals


def test_a_flipped_byte_fails_the_md5_etag_and_names_the_object_and_the_setting() -> None:
    flipped = BODY[:-1] + bytes([BODY[-1] ^ 0xFF])
    assert len(flipped) == len(BODY)
    with pytest.raises(IntegrityError, match=r"s3://b/x\.zarr/q/0\.1.*etag_md5: false"):
        verify_body("s3://b/x.zarr/q/0.1", flipped, {"ETag": f'"{MD5}"'}, None)
    assert is_transient(IntegrityError("x"))  # fetched again within the budget
    assert verify_body("k", flipped, {"ETag": f'"{MD5}"'}, None, etag_md5=False) == ()


def test_integrity_settings_come_from_gagebench_yaml_and_are_validated() -> None:
    assert IntegritySettings.from_mapping(None) == IntegritySettings(
        require_verified=False, etag_md5=True
    )
    assert IntegritySettings.from_mapping({"require_verified": True}).require_verified
    with pytest.raises(ConfigError, match=r"integrity\.require_verified: expected true or false"):
        IntegritySettings.from_mapping({"require_verified": "yes"})
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) gagebench\.integrity\.verify;"):
        IntegritySettings.from_mapping({"verify": True})


# -- metadata cut short, unverified objects (real files, a real LocalStore) ----------------


def _consolidated_store(tmp_path):
    import xarray as xr

    path = str(tmp_path / "obs.zarr")
    ds = xr.Dataset(
        {"q": (("time", "gage_id"), np.ones((4, 3), dtype="float32"), {"units": "m3/s"})},
        coords={
            "time": np.arange("2001-01-01", "2001-01-05", dtype="datetime64[D]"),
            "gage_id": ["USGS-01", "USGS-02", "USGS-03"],
        },
    )
    ds.to_zarr(path, zarr_format=2, consolidated=True, encoding={"q": {"chunks": (4, 1)}})
    return path


def test_metadata_cut_short_is_retried_then_names_the_store_and_the_key(tmp_path) -> None:
    path = _consolidated_store(tmp_path)
    meta = tmp_path / "obs.zarr" / ".zmetadata"
    meta.write_bytes(meta.read_bytes()[:-40])
    with pytest.raises(IntegrityError, match="not whole JSON"):
        check_metadata(".zmetadata", meta.read_bytes())
    store = VerifyingStore(
        zarr.storage.LocalStore(path, read_only=True),
        RetryPolicy(max_attempts=3, max_wait_s=0.3),
        path,
    )
    with pytest.raises(StoreUnavailable) as failed:
        zarr.open_group(store, mode="r", use_consolidated=True)
    message = str(failed.value)
    assert path in message, message
    assert "(metadata .zmetadata)" in message, message
    assert "not whole JSON" in message, message
    assert "3 attempts" in message, message


def test_a_zarray_cut_short_on_a_worker_names_the_store_and_the_key(tmp_path) -> None:
    # The store opens from its consolidated metadata; the chunk reader reads .zarray later.
    from gagebench.config import StoreConfig
    from gagebench.sources.zarrstore import ZarrStore

    path = _consolidated_store(tmp_path)
    zarray = tmp_path / "obs.zarr" / "q" / ".zarray"
    zarray.write_bytes(zarray.read_bytes()[:-10])
    options = {"gagebench_retries": {"max_attempts": 2, "max_wait_s": 0.2}}  # the run's
    store = ZarrStore("observed", StoreConfig(url=path, variable="q", storage_options=options))
    assert store.array.store.policy == RetryPolicy(max_attempts=2, max_wait_s=0.2)
    with pytest.raises(StorageError) as failed:
        store.read(np.array([0, 1]))
    message = str(failed.value)
    assert f"the observed store {path!r}" in message, message
    assert "q/.zarray" in message, message
    assert "not whole JSON" in message, message


def test_require_verified_refuses_what_no_digest_covers(tmp_path) -> None:
    path, data = _store_with_chunks(tmp_path)
    strict = IntegritySettings(require_verified=True, etag_md5=True)
    store = verified_store(path, None, {"gagebench_integrity": strict.to_dict()})
    with pytest.raises(
        UnverifiedObjectError, match=r"local stores send no digest.*require_verified"
    ):
        zarr.open_array(store, mode="r")
    assert not is_transient(UnverifiedObjectError("x"))  # refused at once, not retried
    relaxed = verified_store(path, None)  # gagebench.yaml: read unverified
    np.testing.assert_array_equal(zarr.open_array(relaxed, mode="r")[:], data)

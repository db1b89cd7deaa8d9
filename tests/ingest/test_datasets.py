"""Dataset registry: parsing, mirror verification, error messages and verified downloads.

Downloads are exercised against an HTTP server on 127.0.0.1 started by the test, never the
internet.
"""

from __future__ import annotations

import hashlib
import importlib.util
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from biasstats.errors import ChecksumError, DataError, DatasetUnavailableError
from biasstats.ingest import datasets

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = (
    "https://raw.githubusercontent.com/baixuechunzi/llm-implicit-bias/"
    "0d2772e8eb21186b6db1fab7551633ffda16c06f/"
)
CHAINED_BLOB = "gitblob:5c1a404a437c87ee95d0a078bc90698fa75256a5"
GOOD = b"model,score\ngpt,0.5\n"
BAD = b"model,score\ngpt,0.9\n"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def gitblob(data: bytes) -> str:
    return "gitblob:" + hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write_registry(folder: Path, files: dict[str, str], base_url: str | None, **extra) -> Path:
    """A one-dataset registry (``fake``, mirror sub-folder ``fake/``) in ``folder``."""
    lines = [
        "schema_version = 1",
        "[datasets.fake]",
        'description = "test data"',
        'citation = "nobody"',
        'license = "CC0"',
        'mirror = "fake/"',
    ]
    lines += [f'base_url = "{base_url}"'] if base_url else []
    lines += [f'{key} = "{value}"' for key, value in extra.items()]
    lines += ["[datasets.fake.files]"] + [f'"{p}" = "{c}"' for p, c in files.items()]
    path = folder / "registry.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Empty mirror and cache in tmp_path, downloads allowed, no proxy for 127.0.0.1."""
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    mirror.mkdir()
    monkeypatch.setenv("BIASSTATS_DATA", str(mirror))
    monkeypatch.setenv("BIASSTATS_CACHE", str(cache))
    monkeypatch.delenv("BIASSTATS_OFFLINE", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    return mirror, cache


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/served``; yields (base_url, folder, log)."""
    folder = tmp_path / "served"
    folder.mkdir()
    log: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            log.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", folder, log
    httpd.shutdown()
    httpd.server_close()


# --------------------------------------------------------------------------- the registry


def test_registry_parses_with_expected_datasets():
    reg = datasets.load_registry()
    assert set(reg) == {
        "bai2024_gpt4o", "bai2024_chained", "bai2024_absolute", "bai2024_stimuli",
        "bai2024_stimuli_synonym", "bai2024_stimuli_analysis", "bai2024_digitized",
        "bai2024_implicit", "bai2024_decision",
    }  # fmt: skip
    assert len(reg["bai2024_gpt4o"].files) == 84
    assert reg["bai2024_gpt4o"].adapter == "bai2024_iat"
    chained = reg["bai2024_chained"].files[0]
    assert chained.url == UPSTREAM + "data/result_chained.csv"
    assert (reg["bai2024_implicit"].adapter, reg["bai2024_implicit"].files[0].checksum) == (
        "bai2024_implicit_table", "gitblob:20b8c7e10d797ec6757cfc7038f560abb3f1c619")  # fmt: skip
    assert (reg["bai2024_decision"].adapter, reg["bai2024_decision"].files[0].checksum) == (
        "bai2024_decision_table", "gitblob:325ef250ad2ea5e731e062d5073ee91b25df2d92")  # fmt: skip
    digitized = reg["bai2024_digitized"]
    assert digitized.mirror_only and all(f.url is None for f in digitized.files)
    assert "NOT made by the authors" in digitized.description


def test_invalid_registry_is_a_one_line_error(tmp_path):
    path = write_registry(tmp_path, {"a.csv": "sha256:abc"}, None)
    with pytest.raises(DataError) as err:
        datasets.load_registry(path)
    assert str(err.value) == (
        f"invalid dataset registry {path}: datasets.fake.files.a.csv: String should match "
        "pattern '^(sha256:[0-9a-f]{64}|gitblob:[0-9a-f]{40})$'"
    )


def test_registry_rejects_unknown_keys_and_escaping_paths(tmp_path):
    path = write_registry(tmp_path, {"../a.csv": sha256(GOOD)}, None, colour="red")
    with pytest.raises(DataError) as err:
        datasets.load_registry(path)
    assert str(err.value).endswith(
        "datasets.fake.files: Value error, file path '../a.csv' must be relative, with / and "
        "no '..' (and 1 more error)"
    )


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DatasetUnavailableError) as err:
        datasets.resolve("bai2024_nope")
    assert str(err.value) == (
        "unknown dataset 'bai2024_nope'; known datasets: bai2024_absolute, bai2024_chained, "
        "bai2024_decision, bai2024_digitized, bai2024_gpt4o, bai2024_implicit, bai2024_stimuli, "
        "bai2024_stimuli_analysis, bai2024_stimuli_synonym"
    )


# --------------------------------------------------------------------------- the real mirror


def test_every_mirrored_file_verifies(bai2024, monkeypatch, tmp_path):
    monkeypatch.setenv("BIASSTATS_DATA", str(bai2024.parent))
    monkeypatch.setenv("BIASSTATS_CACHE", str(tmp_path))
    monkeypatch.setenv("BIASSTATS_OFFLINE", "1")
    reg = datasets.load_registry()
    mirrored = [n for n, ds in reg.items() if (bai2024 / ds.files[0].path).is_file()]
    assert set(reg) - set(mirrored) == {"bai2024_implicit", "bai2024_decision"}
    for name in mirrored:
        paths = datasets.resolve(name)
        assert paths == [bai2024 / f.path for f in reg[name].files]
        assert datasets.availability(name) == (True, f"mirror {bai2024}")
    assert datasets.availability("bai2024_implicit") == (
        False, "download needed: biasstats fetch bai2024_implicit")  # fmt: skip


def test_registry_is_reproducible_from_the_mirror(bai2024):
    spec = importlib.util.spec_from_file_location(
        "make_registry", REPO / "data" / "make_registry.py"
    )
    make_registry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_registry)
    expected = (REPO / "data" / "registry.toml").read_text(encoding="utf-8")
    assert make_registry.render(bai2024.parent) == expected


def test_gitblob_verification_on_result_chained(bai2024, tmp_path, monkeypatch):
    chained = bai2024 / "data" / "result_chained.csv"
    assert datasets.file_checksum(chained, "gitblob") == CHAINED_BLOB
    reg_path = write_registry(tmp_path, {"data/result_chained.csv": CHAINED_BLOB}, None)
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "fake").symlink_to(bai2024)
    monkeypatch.setenv("BIASSTATS_DATA", str(tmp_path / "mirror"))
    paths = datasets.resolve("fake", registry=datasets.load_registry(reg_path))
    assert paths == [tmp_path / "mirror" / "fake" / "data" / "result_chained.csv"]


def test_checksums_are_hashed_once_per_file_version(bai2024, monkeypatch):
    monkeypatch.setenv("BIASSTATS_DATA", str(bai2024.parent))
    monkeypatch.setattr(datasets, "_DIGESTS", {})
    calls = []
    real = datasets._digest
    monkeypatch.setattr(datasets, "_digest", lambda *a: calls.append(a) or real(*a))
    datasets.resolve("bai2024_gpt4o")
    datasets.resolve("bai2024_gpt4o")
    assert len(calls) == 84


# --------------------------------------------------------------------------- refusals


def test_mismatching_mirror_file_is_refused_even_if_downloadable(env, server, tmp_path):
    mirror, _ = env
    base_url, served, log = server
    (served / "a.csv").write_bytes(GOOD)  # a correct copy is downloadable ...
    (mirror / "fake").mkdir()
    (mirror / "fake" / "a.csv").write_bytes(BAD)  # ... but the mirror copy is wrong
    reg = datasets.load_registry(write_registry(tmp_path, {"a.csv": sha256(GOOD)}, base_url))
    with pytest.raises(ChecksumError) as err:
        datasets.resolve("fake", registry=reg)
    assert str(err.value) == (
        f"checksum mismatch for {mirror / 'fake' / 'a.csv'}: expected {sha256(GOOD)}, "
        f"got {sha256(BAD)}; the file is refused"
    )
    assert log == []
    assert datasets.availability("fake", registry=reg) == (False, str(err.value))


def test_offline_without_mirror_is_unavailable(env, monkeypatch):
    monkeypatch.setenv("BIASSTATS_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError) as err:
        datasets.resolve("bai2024_implicit")
    assert str(err.value) == (
        "dataset 'bai2024_implicit' is not available: no local mirror (set BIASSTATS_DATA to a "
        "folder holding bai2024/data/result_implicit.csv) and download of "
        f"{UPSTREAM}data/result_implicit.csv is disabled (BIASSTATS_OFFLINE=1)"
    )


def test_mirror_only_dataset_says_so(env, tmp_path):
    reg = datasets.load_registry(write_registry(tmp_path, {"a.csv": sha256(GOOD)}, None))
    with pytest.raises(DatasetUnavailableError) as err:
        datasets.resolve("fake", registry=reg)
    assert str(err.value) == (
        "dataset 'fake' is not available: no local mirror (set BIASSTATS_DATA to a folder "
        "holding fake/a.csv) and it is mirror-only (no upstream URL)"
    )
    assert datasets.availability("fake", registry=reg) == (
        False, "mirror only: set BIASSTATS_DATA to a folder holding fake/")  # fmt: skip


def test_resolve_without_download_points_to_fetch(env, server, tmp_path):
    base_url, _, log = server
    reg = datasets.load_registry(write_registry(tmp_path, {"a.csv": sha256(GOOD)}, base_url))
    with pytest.raises(
        DatasetUnavailableError, match=r"not downloaded yet \(run: biasstats fetch fake\)$"
    ):
        datasets.resolve("fake", download=False, registry=reg)
    assert log == []


# --------------------------------------------------------------------------- downloads


@pytest.mark.parametrize("checksum", [sha256, gitblob], ids=["sha256", "gitblob"])
def test_download_is_verified_and_cached(env, server, tmp_path, checksum):
    _, cache = env
    base_url, served, log = server
    (served / "sub").mkdir()
    (served / "sub" / "a.csv").write_bytes(GOOD)
    reg = datasets.load_registry(write_registry(tmp_path, {"sub/a.csv": checksum(GOOD)}, base_url))
    assert datasets.availability("fake", registry=reg) == (
        False, "download needed: biasstats fetch fake")  # fmt: skip
    assert log == []
    paths = datasets.fetch("fake", registry=reg)
    assert paths == [cache / "fake" / "sub" / "a.csv"] and paths[0].read_bytes() == GOOD
    assert datasets.resolve("fake", registry=reg) == paths
    assert log == ["/sub/a.csv"]
    assert datasets.availability("fake", registry=reg) == (True, f"cache {cache / 'fake'}")
    assert sorted(p.name for p in (cache / "fake" / "sub").iterdir()) == ["a.csv"]


@pytest.mark.parametrize("checksum", [sha256, gitblob], ids=["sha256", "gitblob"])
def test_mismatching_download_is_deleted_and_refused(env, server, tmp_path, checksum):
    _, cache = env
    base_url, served, _ = server
    (served / "a.csv").write_bytes(BAD)
    reg = datasets.load_registry(write_registry(tmp_path, {"a.csv": checksum(GOOD)}, base_url))
    with pytest.raises(ChecksumError) as err:
        datasets.fetch("fake", registry=reg)
    assert str(err.value) == (
        f"checksum mismatch for download {base_url}a.csv: expected {checksum(GOOD)}, "
        f"got {checksum(BAD)}; the download was deleted"
    )
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_corrupt_cache_copy_is_replaced_by_a_fresh_download(env, server, tmp_path):
    _, cache = env
    base_url, served, log = server
    (served / "a.csv").write_bytes(GOOD)
    (cache / "fake").mkdir(parents=True)
    (cache / "fake" / "a.csv").write_bytes(BAD)
    reg = datasets.load_registry(write_registry(tmp_path, {"a.csv": gitblob(GOOD)}, base_url))
    assert datasets.resolve("fake", registry=reg)[0].read_bytes() == GOOD
    assert log == ["/a.csv"]


def test_failed_download_is_unavailable_with_cause(env, server, tmp_path):
    base_url, _, _ = server
    reg = datasets.load_registry(write_registry(tmp_path, {"a.csv": sha256(GOOD)}, base_url))
    with pytest.raises(DatasetUnavailableError) as err:
        datasets.fetch("fake", registry=reg)
    assert str(err.value) == (
        "dataset 'fake' is not available: no local mirror (set BIASSTATS_DATA to a folder "
        f"holding fake/a.csv) and download of {base_url}a.csv failed (HTTP 404)"
    )


def test_refused_connection_is_unavailable_with_cause(env, tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    reg = datasets.load_registry(write_registry(tmp_path, {"a.csv": sha256(GOOD)}, url))
    with pytest.raises(DatasetUnavailableError, match=r"a\.csv failed \(ConnectionError\)$"):
        datasets.fetch("fake", registry=reg)


def test_packaged_registry_is_used_outside_the_source_tree(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "biasstats"
    (package / "_data").mkdir(parents=True)
    write_registry(package / "_data", {"a.csv": sha256(GOOD)}, None)
    monkeypatch.setattr(datasets, "REPO", tmp_path / "nowhere")
    monkeypatch.setattr(datasets.resources, "files", lambda name: package)
    assert list(datasets.load_registry()) == ["fake"]

"""Results on disk: a manifest and Parquet chunks, written atomically, scanned to resume.

Layout of a study directory::

    DIR/study.json                       what defines the results (seed, conditions, methods)
    DIR/chunks/c0003-reml-r000100-000124-<hash>.parquet
                                          one finished task: one condition, one method, a set
                                          of replicates (all of their rows)

A chunk is written to a temporary file and moved into place with ``os.replace``, so a run
killed at any moment leaves whole chunks or nothing (plus perhaps a stray temporary file, which
the next scan deletes).  Each chunk carries its own description (condition, method, replicate
list, row count) in the Parquet metadata; :meth:`Store.scan` reads every chunk fully and
deletes any that is unreadable, truncated, inconsistent with its description, or overlaps an
earlier chunk, so its replicates are redone.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import SpecError, StoreError
from ..io import atomic_write, atomic_write_text

META_KEY = b"workbench.chunk"
CHUNK_RE = re.compile(r"^c(\d+)-(.+)-r(\d+)-(\d+)-([0-9a-f]{8})\.parquet$")


@dataclass
class ScanResult:
    """What a scan found: replicates done per (condition, method), chunks removed."""

    done: dict = field(default_factory=dict)
    chunks: list = field(default_factory=list)
    removed: list = field(default_factory=list)


class Store:
    """A study's result directory.

    Parameters
    ----------
    root : str or Path
    """

    def __init__(self, root):
        self.root = Path(root)
        self.chunk_dir = self.root / "chunks"
        self.manifest_path = self.root / "study.json"

    # ----------------------------------------------------------------- manifest
    def read_manifest(self) -> dict | None:
        """The manifest, or None when the directory holds no study yet."""
        if not self.manifest_path.is_file():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{self.manifest_path}: unreadable study manifest ({exc})") from None

    def open(self, manifest: dict, methods: list[str]) -> dict:
        """Create the directory, or check that it holds results of the same study.

        Seed, level, parameters and conditions must agree with the stored manifest, and so
        must the spec of every method in ``methods`` that is already stored; new methods are
        added.  Returns the manifest now stored.
        """
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"--out '{self.root}' exists and is not a directory")
        old = self.read_manifest()
        if old is None:
            if self.root.is_dir() and any(p.name != "chunks" for p in self.root.iterdir()) \
                    and not self.chunk_dir.is_dir():
                raise StoreError(f"--out '{self.root}' is a non-empty directory that holds no study")
            self.chunk_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
            return manifest
        for key in ("name", "seed", "level", "parameters", "conditions", "truth", "thin_to"):
            if json.dumps(old.get(key), sort_keys=True) != json.dumps(manifest.get(key), sort_keys=True):
                raise StoreError(
                    f"'{self.root}' holds results of a different study ({key} differs from the "
                    "stored one); use a new --out directory, or the same spec and seed to resume"
                )
        merged = dict(old)
        merged["methods"] = dict(old.get("methods", {}))
        for m in methods:
            new = manifest["methods"][m]
            if m in merged["methods"] and json.dumps(merged["methods"][m], sort_keys=True) != \
                    json.dumps(new, sort_keys=True):
                raise StoreError(
                    f"'{self.root}' holds results of method '{m}' with other settings; "
                    "rename the method or use a new --out directory"
                )
            merged["methods"][m] = new
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        if merged != old:
            atomic_write_text(self.manifest_path, json.dumps(merged, indent=1, sort_keys=True))
        return merged

    # ------------------------------------------------------------------- chunks
    def chunk_path(self, condition: int, method: str, replicates: list[int]) -> Path:
        h = hashlib.sha1(json.dumps(replicates).encode()).hexdigest()[:8]
        return self.chunk_dir / (
            f"c{condition:04d}-{method}-r{min(replicates):06d}-{max(replicates):06d}-{h}.parquet"
        )

    def write_chunk(self, frame: pd.DataFrame, condition: int, method: str,
                    replicates: list[int]) -> Path:
        """Write one task's rows atomically, with their description in the metadata."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        meta = {"condition": condition, "method": method, "replicates": list(map(int, replicates)),
                "nrows": int(frame.shape[0])}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               META_KEY: json.dumps(meta).encode()})
        path = self.chunk_path(condition, method, replicates)
        atomic_write(path, lambda p: pq.write_table(table, p))
        return path

    def _check_chunk(self, path: Path) -> tuple[dict, pd.DataFrame]:
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[META_KEY])
        frame = table.to_pandas()
        m = CHUNK_RE.match(path.name)
        reps = meta["replicates"]
        ok = (
            m is not None
            and int(m.group(1)) == meta["condition"]
            and m.group(2) == meta["method"]
            and frame.shape[0] == meta["nrows"]
            and (frame["condition"] == meta["condition"]).all()
            and (frame["method"] == meta["method"]).all()
            and set(frame["replicate"].unique().tolist()) == set(reps)
            and len(set(reps)) == len(reps)
        )
        if not ok:
            raise ValueError("chunk contents do not match its description")
        return meta, frame

    def scan(self, repair: bool = True, load: bool = False) -> ScanResult:
        """Find finished replicates; delete temporary files and bad chunks (when ``repair``).

        Parameters
        ----------
        repair : bool
            Delete stray temporary files and invalid or overlapping chunks.
        load : bool
            Keep the chunks' rows (``ScanResult.chunks`` holds DataFrames).

        Returns
        -------
        ScanResult
        """
        res = ScanResult()
        if not self.chunk_dir.is_dir():
            return res
        for path in sorted(self.chunk_dir.iterdir()):
            if path.name.startswith("."):
                if repair and ".tmp" in path.name:
                    path.unlink(missing_ok=True)
                continue
            if not path.name.endswith(".parquet"):
                continue
            try:
                meta, frame = self._check_chunk(path)
            except Exception as exc:  # unreadable, truncated, foreign: redo its replicates
                res.removed.append((path.name, " ".join(str(exc).split())[:120]))
                if repair:
                    path.unlink(missing_ok=True)
                continue
            key = (meta["condition"], meta["method"])
            done = res.done.setdefault(key, set())
            if done.intersection(meta["replicates"]):
                res.removed.append((path.name, "overlaps another chunk"))
                if repair:
                    path.unlink(missing_ok=True)
                continue
            done.update(meta["replicates"])
            if load:
                res.chunks.append(frame)
        return res

    def results(self) -> pd.DataFrame:
        """All rows, sorted by condition, method, replicate, interval, parameter.

        Raises
        ------
        StoreError
            A chunk is unreadable, inconsistent or overlaps another (rather than leaving its
            replicates out of the summaries), or there are no results.
        """
        res = self.scan(repair=False, load=True)
        if res.removed:
            name, why = res.removed[0]
            more = f" (and {len(res.removed) - 1} more)" if len(res.removed) > 1 else ""
            raise StoreError(
                f"'{self.root}': chunk {name} cannot be used ({why}){more}; run `workbench "
                "study run` with the same arguments to redo its replicates, then summarize")
        if not res.chunks:
            raise StoreError(f"'{self.root}' holds no results yet (run `workbench study run` first)")
        frame = pd.concat(res.chunks, ignore_index=True)
        if "level" not in frame:  # chunks written before group-effect rows existed
            frame["level"] = None
        return frame.sort_values(["condition", "method", "replicate", "interval", "parameter", "level"],
                                 kind="stable").reset_index(drop=True)


def open_results(root) -> tuple[dict, pd.DataFrame]:
    """(manifest, results) of a study directory, for summaries and figures."""
    store = Store(root)
    if store.root.exists() and not store.root.is_dir():
        raise StoreError(f"'{root}' is a file, not a study directory")
    if not store.root.is_dir():
        raise StoreError(f"study directory '{root}' does not exist")
    manifest = store.read_manifest()
    if manifest is None:
        raise StoreError(f"'{root}' is not a study directory (no study.json)")
    return manifest, store.results()


__all__ = ["Store", "StoreError", "ScanResult", "open_results", "SpecError"]

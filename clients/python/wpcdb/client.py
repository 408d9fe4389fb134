"""The wpcdb client: a thin, typed layer over the generated gRPC stubs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import grpc
import numpy as np
from google.protobuf import struct_pb2

from wpcdb.v1 import wpcdb_pb2 as pb
from wpcdb.v1 import wpcdb_pb2_grpc as pb_grpc

__all__ = ["Client", "Hit", "Item", "RerankResult", "WPCDBError"]

_SCORE = {None: pb.SCORE_MODE_UNSPECIFIED, "inner": pb.SCORE_MODE_INNER,
          "cosine": pb.SCORE_MODE_COSINE, "mmd": pb.SCORE_MODE_MMD}
_NORM = {None: pb.NORM_UNSPECIFIED, "mean": pb.NORM_MEAN, "sum": pb.NORM_SUM}
_ENCODING = {None: pb.ENCODING_UNSPECIFIED, "f32": pb.ENCODING_F32,
             "f16": pb.ENCODING_F16, "bf16": pb.ENCODING_BF16}

# The largest response the client accepts (a big GetMany or BatchSearch).
_MAX_RECV = 1 << 30


@dataclass
class Hit:
    """A search result: the item's ID, its exact score (higher is closer)
    and, for mmd collections, the distance; attrs with with_attrs."""
    id: str
    score: float
    distance: float = 0.0
    attrs: Optional[Dict[str, Any]] = None


@dataclass
class Item:
    """A stored item. points is an (M, d) float32 array and weights an (M,)
    one; both are None when the item was listed without its cloud."""
    id: str
    points: Optional[np.ndarray] = None
    weights: Optional[np.ndarray] = None
    attrs: Dict[str, Any] = field(default_factory=dict)


@dataclass
class RerankResult:
    """Rerank's answer: the scored hits, best first, and the IDs that do
    not exist."""
    hits: List[Hit]
    missing: List[str]


class WPCDBError(Exception):
    """An error from the server. code is the grpc.StatusCode; for an item
    refused by validation, index is its position in the upsert, item_id its
    ID and reason names the field (e.g. "points[2][0]: value is NaN")."""

    def __init__(self, code: grpc.StatusCode, message: str, index: Optional[int] = None,
                 item_id: Optional[str] = None, reason: Optional[str] = None):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.index = index
        self.item_id = item_id
        self.reason = reason


def _varint(buf: bytes, i: int) -> Tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _status_details(buf: bytes) -> List[Tuple[str, bytes]]:
    """Decodes the Any details of a google.rpc.Status (field 3) by hand, so
    that no googleapis package is needed."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            _, i = _varint(buf, i)
            continue
        if wt != 2:
            break
        n, i = _varint(buf, i)
        val, i = buf[i:i + n], i + n
        if num == 3:  # Any: type_url = 1, value = 2
            url, data, j = "", b"", 0
            while j < len(val):
                k, j = _varint(val, j)
                m, j = _varint(val, j)
                if k >> 3 == 1:
                    url = val[j:j + m].decode()
                elif k >> 3 == 2:
                    data = val[j:j + m]
                j += m
            out.append((url, data))
    return out


def _error(err: grpc.RpcError) -> WPCDBError:
    code, message = err.code(), err.details() or ""
    for key, value in (err.trailing_metadata() or ()):
        if key != "grpc-status-details-bin":
            continue
        for url, data in _status_details(value):
            if url.endswith("/wpcdb.v1.InvalidItem"):
                bad = pb.InvalidItem.FromString(data)
                return WPCDBError(code, message, bad.index, bad.id, bad.reason)
    return WPCDBError(code, message)


def _scalar_to_pb(name: str, v: Any) -> struct_pb2.Value:
    if v is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(v, (bool, np.bool_)):
        return struct_pb2.Value(bool_value=bool(v))
    if isinstance(v, (int, float, np.integer, np.floating)):
        return struct_pb2.Value(number_value=float(v))
    if isinstance(v, str):
        return struct_pb2.Value(string_value=v)
    raise TypeError(f"{name}: value must be a string, number, boolean, None or a list of those, got {type(v).__name__}")


def _attr_to_pb(name: str, v: Any) -> struct_pb2.Value:
    """A string, number, boolean, None (null), or a list / tuple / 1-D
    array of strings, numbers and booleans."""
    if isinstance(v, (list, tuple, np.ndarray)):
        elems = v.tolist() if isinstance(v, np.ndarray) else v
        vals = []
        for i, e in enumerate(elems):
            if e is None or isinstance(e, (list, tuple, dict)):
                raise TypeError(f"attrs.{name}[{i}]: a list holds strings, numbers and booleans, got {type(e).__name__}")
            vals.append(_scalar_to_pb(f"attrs.{name}[{i}]", e))
        return struct_pb2.Value(list_value=struct_pb2.ListValue(values=vals))
    return _scalar_to_pb(f"attrs.{name}", v)


def _attrs_to_pb(attrs: Optional[Dict[str, Any]]) -> Dict[str, struct_pb2.Value]:
    return {k: _attr_to_pb(k, v) for k, v in (attrs or {}).items()}


def _value_from_pb(v: struct_pb2.Value) -> Any:
    kind = v.WhichOneof("kind")
    if kind in ("string_value", "number_value", "bool_value"):
        return getattr(v, kind)
    if kind == "list_value":
        return [_value_from_pb(e) for e in v.list_value.values]
    return None  # null


def _attrs_from_pb(attrs) -> Dict[str, Any]:
    return {k: _value_from_pb(v) for k, v in attrs.items()}


def _cloud(points, weights=None) -> pb.Cloud:
    """Packs an (M, d) array as little-endian bytes: float16 arrays travel
    as float16, everything else as float32."""
    a = np.asarray(points)
    if a.ndim != 2:
        raise ValueError(f"points: want an (M, d) array, got shape {a.shape}")
    if a.dtype == np.float16:
        data, dtype = a.astype("<f2", copy=False).tobytes(), pb.DTYPE_FLOAT16
    else:
        data, dtype = a.astype("<f4", copy=False).tobytes(), pb.DTYPE_FLOAT32
    c = pb.Cloud(dim=a.shape[1], points_data=data, points_dtype=dtype)
    if weights is not None:
        w = np.asarray(weights, dtype=np.float32).reshape(-1)
        if len(w) != a.shape[0]:
            raise ValueError(f"weights: {len(w)} weights for {a.shape[0]} points")
        c.weights.extend(w.tolist())
    return c


def _item_from_pb(p: pb.Item) -> Item:
    it = Item(id=p.id, attrs=_attrs_from_pb(p.attrs))
    if p.HasField("cloud"):
        d = p.cloud.dim
        it.points = np.asarray(p.cloud.points, dtype=np.float32).reshape(-1, d) if d else None
        it.weights = np.asarray(p.cloud.weights, dtype=np.float32)
    return it


def _hits(hs) -> List[Hit]:
    return [Hit(h.id, h.score, h.distance, _attrs_from_pb(h.attrs) if h.attrs else None) for h in hs]


class Client:
    """A client of `wpcdb serve`. Plaintext by default; tls=True verifies
    the server against ca (a PEM file) or the system roots. The bearer
    token comes from token, else the WPCDB_TOKEN environment variable.
    Safe to share between threads."""

    def __init__(self, addr: str, token: Optional[str] = None, tls: bool = False,
                 ca: Optional[str] = None, timeout: Optional[float] = None):
        token = token if token is not None else os.environ.get("WPCDB_TOKEN") or None
        opts = [("grpc.max_receive_message_length", _MAX_RECV), ("grpc.max_send_message_length", _MAX_RECV)]
        if tls or ca:
            root = open(ca, "rb").read() if ca else None
            self._channel = grpc.secure_channel(addr, grpc.ssl_channel_credentials(root), opts)
        else:
            self._channel = grpc.insecure_channel(addr, opts)
        self._stub = pb_grpc.WPCDBServiceStub(self._channel)
        self._metadata = (("authorization", "Bearer " + token),) if token else None
        self._timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, req):
        try:
            return getattr(self._stub, method)(req, metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as err:
            raise _error(err) from None

    # Collections.

    def create_collection(self, name: str, dim: int, kernel: Optional[str] = None,
                          score: Optional[str] = None, encoding: Optional[str] = None,
                          norm: Optional[str] = None, max_points: int = 0,
                          raw_points: bool = False, rff_dim: int = 0, rff_seed: int = 0) -> dict:
        """Creates a collection; every argument but name and dim has the
        server's default. Returns the collection's description."""
        cfg = pb.CollectionConfig(dim=dim, kernel=kernel or "", score=_SCORE[score],
                                  encoding=_ENCODING[encoding], norm=_NORM[norm], max_points=max_points,
                                  raw_points=raw_points, rff_dim=rff_dim, rff_seed=rff_seed)
        return _info(self._call("CreateCollection", pb.CreateCollectionRequest(name=name, config=cfg)).collection)

    def describe(self, name: str) -> dict:
        return _info(self._call("DescribeCollection", pb.DescribeCollectionRequest(name=name)).collection)

    def list_collections(self) -> List[dict]:
        return [_info(c) for c in self._call("ListCollections", pb.ListCollectionsRequest()).collections]

    def drop_collection(self, name: str) -> None:
        self._call("DropCollection", pb.DropCollectionRequest(name=name))

    def calibrate(self, name: str, queries: Optional[Sequence] = None) -> dict:
        """Chooses the collection's first-stage vector now by measured
        recall on sample (M, d) query clouds (None: held-out items);
        returns the chosen representation, what was measured, and why
        nothing was (skipped)."""
        req = pb.CalibrateRequest(collection=name, queries=[_cloud(q) for q in (queries or [])])
        res = self._call("Calibrate", req)
        return {
            "chosen": res.chosen, "skipped": res.skipped,
            "measured": [{"representation": m.representation, "dim": m.dim, "recall": m.recall} for m in res.measured],
            "depth": res.depth, "sample": res.sample, "queries": res.queries,
        }

    # Writes.

    def upsert(self, collection: str, ids: Sequence[str], points, weights=None,
               attrs: Optional[Sequence[Optional[Dict[str, Any]]]] = None, lengths=None,
               batch_bytes: int = 16 << 20, skip_invalid: bool = False) -> int:
        """Stores items: points is a list of (M_i, d) arrays, or an (N, M, d)
        array whose rows keep their first lengths[i] points. Sent in batches
        of about batch_bytes, each one durable and atomic; returns the
        number written. A refused batch raises WPCDBError with the item's
        index (in ids), ID and reason; the batches before it stay."""
        n = len(ids)
        if lengths is not None:
            arr = np.asarray(points)
            clouds = [arr[i, :int(lengths[i])] for i in range(n)]
        else:
            clouds = list(points)
        if len(clouds) != n:
            raise ValueError(f"points: {len(clouds)} clouds for {n} ids")
        written, batch, size, first = 0, [], 0, 0
        for i in range(n):
            w = None if weights is None else weights[i]
            if w is not None and lengths is not None:
                w = np.asarray(w)[:int(lengths[i])]
            item = pb.Item(id=ids[i], cloud=_cloud(clouds[i], w),
                           attrs=_attrs_to_pb(attrs[i] if attrs is not None else None))
            batch.append(item)
            size += item.ByteSize()
            if size >= batch_bytes:
                written += self._upsert_batch(collection, batch, first, skip_invalid)
                first, batch, size = i + 1, [], 0
        if batch:
            written += self._upsert_batch(collection, batch, first, skip_invalid)
        return written

    def _upsert_batch(self, collection, items, first, skip_invalid) -> int:
        try:
            res = self._call("UpsertBatch", pb.UpsertBatchRequest(collection=collection, items=items, skip_invalid=skip_invalid))
        except WPCDBError as e:
            if e.index is not None:
                e.index += first
            raise
        return res.written

    def update_attrs(self, collection: str, id: str, set: Optional[Dict[str, Any]] = None,
                     unset: Sequence[str] = ()) -> Dict[str, Any]:
        """Sets and removes attributes without resending the cloud; returns
        the attributes after the update."""
        res = self._call("UpdateAttrs", pb.UpdateAttrsRequest(collection=collection, id=id, set=_attrs_to_pb(set), unset=list(unset)))
        return _attrs_from_pb(res.attrs)

    def delete(self, collection: str, ids: Sequence[str]) -> int:
        """Deletes items; returns how many existed."""
        return self._call("Delete", pb.DeleteRequest(collection=collection, ids=list(ids))).deleted

    # Reads.

    def search(self, collection: str, points, weights=None, k: int = 10, filter: Optional[str] = None,
               with_attrs: bool = False, offset: int = 0, exact: bool = False) -> List[Hit]:
        """The k items most similar to the (M, d) query cloud, best first."""
        req = pb.SearchRequest(collection=collection, query=_cloud(points, weights), k=k, filter=filter or "",
                               with_attrs=with_attrs, offset=offset, exact=exact)
        return _hits(self._call("Search", req).hits)

    def batch_search(self, collection: str, queries: Sequence, weights: Optional[Sequence] = None, k: int = 10,
                     filter: Optional[str] = None, with_attrs: bool = False) -> List[List[Hit]]:
        """One search per query cloud, with shared parameters."""
        qs = [_cloud(q, None if weights is None else weights[i]) for i, q in enumerate(queries)]
        res = self._call("BatchSearch", pb.BatchSearchRequest(collection=collection, queries=qs, k=k,
                                                              filter=filter or "", with_attrs=with_attrs))
        return [_hits(r.hits) for r in res.results]

    def rerank(self, collection: str, points, ids: Sequence[str], weights=None,
               with_attrs: bool = False) -> RerankResult:
        """Scores the given items exactly against the query, best first;
        unknown IDs are listed in missing."""
        res = self._call("Rerank", pb.RerankRequest(collection=collection, query=_cloud(points, weights),
                                                    ids=list(ids), with_attrs=with_attrs))
        return RerankResult(_hits(res.hits), list(res.missing))

    def get(self, collection: str, id: str) -> Item:
        return _item_from_pb(self._call("Get", pb.GetRequest(collection=collection, id=id)).item)

    def get_many(self, collection: str, ids: Sequence[str]) -> Tuple[List[Item], List[str]]:
        """The items with these IDs in request order, and the missing IDs."""
        res = self._call("GetMany", pb.GetManyRequest(collection=collection, ids=list(ids)))
        return [_item_from_pb(p) for p in res.items], list(res.missing)

    def count(self, collection: str, filter: Optional[str] = None) -> int:
        return self._call("Count", pb.CountRequest(collection=collection, filter=filter or "")).count

    def scroll(self, collection: str, filter: Optional[str] = None, page_size: int = 256,
               with_clouds: bool = False) -> Iterator[Item]:
        """Every item passing the filter, in ID order, fetched a page at a
        time; each item that exists throughout comes exactly once."""
        cursor = ""
        while True:
            res = self._call("Scroll", pb.ScrollRequest(collection=collection, filter=filter or "", cursor=cursor,
                                                        limit=page_size, with_clouds=with_clouds))
            for p in res.items:
                yield _item_from_pb(p)
            if not res.next_cursor:
                return
            cursor = res.next_cursor


    def snapshot(self, name: str) -> str:
        """Writes a snapshot of the whole database into the server's
        snapshot directory; returns its path on the server."""
        return self._call("Snapshot", pb.SnapshotRequest(dir=name)).dir

    def list_snapshots(self) -> List[dict]:
        """The server's snapshots: name, dir, created_unix_ms, bytes."""
        res = self._call("ListSnapshots", pb.ListSnapshotsRequest())
        return [{"name": s.name, "dir": s.dir, "created_unix_ms": s.created_unix_ms, "bytes": s.bytes}
                for s in res.snapshots]


def _info(c: pb.CollectionInfo) -> dict:
    cfg = c.config
    return {
        "name": c.name, "count": c.count, "disk_bytes": c.disk_bytes,
        "dim": cfg.dim, "max_points": cfg.max_points, "kernel": cfg.kernel,
        "score": pb.ScoreMode.Name(cfg.score).removeprefix("SCORE_MODE_").lower(),
        "norm": pb.Norm.Name(cfg.norm).removeprefix("NORM_").lower(),
        "encoding": pb.Encoding.Name(cfg.encoding).removeprefix("ENCODING_").lower(),
        "index": {"kind": c.index.kind, "in_graph": c.index.in_graph, "buffered": c.index.buffered},
    }

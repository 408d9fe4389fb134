import numpy as np
import grpc
import pytest

from wpcdb import Client, WPCDBError
from conftest import TOKEN


@pytest.fixture
def client(server, monkeypatch):
    monkeypatch.setenv("WPCDB_TOKEN", TOKEN)
    with Client(server) as c:
        yield c


def clouds(rng, n, m, d):
    return [rng.standard_normal((1 + rng.integers(m), d)).astype(np.float32) for _ in range(n)]


def test_end_to_end(client):
    rng = np.random.default_rng(1)
    client.create_collection("e2e", dim=8, score="cosine")
    ids = [f"item-{i:03d}" for i in range(50)]
    pts = clouds(rng, 50, 6, 8)
    attrs = [{"color": ["red", "blue"][i % 2], "n": i} for i in range(50)]
    assert client.upsert("e2e", ids, pts, attrs=attrs, batch_bytes=2000) == 50  # several batches
    assert client.count("e2e") == 50
    assert client.count("e2e", filter='color = "red"') == 25

    hits = client.search("e2e", pts[7], k=5, with_attrs=True)
    assert hits[0].id == "item-007" and hits[0].attrs == {"color": "blue", "n": 7.0}
    assert len(client.search("e2e", pts[7])) == 10  # k defaults to 10
    page = client.search("e2e", pts[7], k=3, offset=2, exact=True)
    assert [h.id for h in page] == [h.id for h in client.search("e2e", pts[7], k=5, exact=True)[2:5]]
    red = client.search("e2e", pts[7], k=5, filter='color = "red"', with_attrs=True)
    assert red and all(h.attrs["color"] == "red" for h in red)

    batch = client.batch_search("e2e", [pts[1], pts[2]], k=1)
    assert [b[0].id for b in batch] == ["item-001", "item-002"]
    rr = client.rerank("e2e", pts[3], ["item-003", "ghost", "item-004"])
    assert rr.hits[0].id == "item-003" and rr.missing == ["ghost"]

    it = client.get("e2e", "item-009")
    np.testing.assert_array_equal(it.points, pts[9])
    items, missing = client.get_many("e2e", ["item-001", "nope"])
    assert [i.id for i in items] == ["item-001"] and missing == ["nope"]

    seen = [it.id for it in client.scroll("e2e", page_size=7)]
    assert seen == sorted(ids)
    blue = list(client.scroll("e2e", filter='color = "blue"', with_clouds=True, page_size=10))
    assert len(blue) == 25 and blue[0].points.shape[1] == 8

    assert client.update_attrs("e2e", "item-000", set={"color": "green"}, unset=["n"]) == {"color": "green"}
    assert client.count("e2e", filter='color = "green"') == 1
    assert client.delete("e2e", ["item-000", "nope"]) == 1
    assert client.describe("e2e")["count"] == 49
    with pytest.raises(WPCDBError) as e:  # 49 items: too few to measure recall on
        client.calibrate("e2e")
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION and "too few" in e.value.message
    assert "e2e" in [c["name"] for c in client.list_collections()]
    client.drop_collection("e2e")


def test_padded_array_and_float16(client):
    client.create_collection("pad", dim=4, encoding="f16")
    arr = np.zeros((3, 5, 4), dtype=np.float16)
    lengths = [1, 5, 2]
    for i, n in enumerate(lengths):
        arr[i, :n] = np.arange(1, 4 * n + 1, dtype=np.float16).reshape(n, 4)
    weights = np.ones((3, 5), dtype=np.float32)
    assert client.upsert("pad", ["a", "b", "c"], arr, weights=weights, lengths=lengths) == 3
    assert [client.get("pad", i).points.shape[0] for i in "abc"] == lengths
    client.drop_collection("pad")


def test_errors(client, server):
    client.create_collection("err", dim=2)
    with pytest.raises(WPCDBError) as e:
        client.upsert("err", ["ok", "bad"], [np.ones((1, 2)), np.array([[np.nan, 1]])])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.index == 1 and e.value.item_id == "bad" and "points[0][0]" in e.value.reason
    assert client.count("err") == 0  # the refused batch wrote nothing
    with pytest.raises(WPCDBError) as e:
        client.search("nope", np.ones((1, 2)))
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(WPCDBError) as e:
        client.count("err", filter="x =")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "filter" in e.value.message
    with Client(server, token="wrong") as bad:
        with pytest.raises(WPCDBError) as e:
            bad.list_collections()
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    client.drop_collection("err")


def test_list_and_null_attrs(client):
    """Lists (of strings and numbers), null and long strings travel both
    ways; filters CONTAINS and IN see a list's elements."""
    rng = np.random.default_rng(2)
    client.create_collection("tags", dim=4)
    long = "x" * 65536
    attrs = [{"tags": ["sale", "shoes"], "sizes": np.array([38, 39.5]), "note": None},
             {"tags": ["boots"], "sizes": (42,), "text": long},
             {"tags": []}]
    client.upsert("tags", ["a", "b", "c"], clouds(rng, 3, 3, 4), attrs=attrs)
    a = client.get("tags", "a")
    assert a.attrs == {"tags": ["sale", "shoes"], "sizes": [38.0, 39.5], "note": None}
    assert client.get("tags", "b").attrs["text"] == long
    assert client.count("tags", filter='tags CONTAINS "sale"') == 1
    assert client.count("tags", filter='tags IN ("boots", "shoes")') == 2
    assert client.count("tags", filter='sizes >= 39 AND sizes < 40') == 1
    assert client.count("tags", filter='note = null') == 1
    assert client.count("tags", filter='tags != "sale"') == 2  # b, and c's empty list
    assert client.update_attrs("tags", "c", set={"tags": ["new"]}) == {"tags": ["new"]}
    assert client.count("tags", filter='tags CONTAINS "new"') == 1
    with pytest.raises(TypeError, match=r"attrs.tags\[1\]"):
        client.upsert("tags", ["d"], clouds(rng, 1, 3, 4), attrs=[{"tags": ["a", None]}])
    with pytest.raises(WPCDBError) as e:
        client.upsert("tags", ["d"], clouds(rng, 1, 3, 4), attrs=[{"text": long + "x"}])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "attrs.text" in e.value.reason


def test_snapshots(client, server_snapshots):
    client.create_collection("snap", dim=4)
    path = client.snapshot("s1")
    assert path.startswith(server_snapshots)
    assert [s["name"] for s in client.list_snapshots()] == ["s1"]
    with pytest.raises(WPCDBError) as e:
        client.snapshot("../out")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT

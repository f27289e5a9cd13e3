from fastapi.testclient import TestClient

from tests.conftest import trashnet_photos


def test_upload_then_list(api: TestClient) -> None:
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in trashnet_photos(3)]
    res = api.post("/api/v1/images", files=files, data={"tags": ["x"], "dataset": "d"})
    assert res.status_code == 200, res.text
    assert res.json()["added"] == 3
    page = api.get("/api/v1/images", params={"tag": "x"}).json()
    assert len(page["items"]) == 3
    assert page["items"][0]["tags"] == ["x"]

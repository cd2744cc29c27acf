"""The reference of benches/api.py: a bare FastAPI endpoint returning a constant, served
by the same uvicorn settings as `bounced api`."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/v1/suppressions/{address}")
def constant(address: str) -> dict[str, object]:
    return {"address": address, "sendable": True}

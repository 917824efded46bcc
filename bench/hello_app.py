"""The anchor of bench/lookup_scale_bench.py: a FastAPI + pydantic hello-world of the lookup's
shape (POST a JSON body validated by a pydantic model at /api/v1/lookup, a JSON answer through
a response model), served by the same uvicorn with the same flags as the real api."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class HelloRequest(BaseModel):
    """The lookup body's fields."""

    address: str | None = None
    id_number: str | None = None
    person_name: str | None = None


class HelloAnswer(BaseModel):
    """A small answer."""

    match: str
    message: str | None = None


@app.post("/api/v1/lookup", response_model=HelloAnswer)
def lookup(body: HelloRequest) -> dict[str, str]:
    """Echo a field back (a sync endpoint, as the api's lookup work is)."""
    return {"match": "none", "message": body.address or body.person_name or ""}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness (the bench waits for it)."""
    return {"status": "ok"}

"""Input shapes for agreements (TMF651 subset)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from turnup.kernel.text import InputModel


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, populate_by_name=True)


class DocumentVersionCreate(Strict):
    """A negotiated (redlined) text becomes the next version; earlier versions stay as they were."""

    content: str = Field(min_length=1, max_length=1_000_000)
    note: str | None = Field(default=None, max_length=2000)


class Signer(Strict):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    organisation: str | None = Field(default=None, max_length=200)


def nest_flat_signer(data: Any) -> Any:
    """Accept the flat spelling ``signerName``/``signerEmail``/``organisation`` as well as the preferred
    ``signer: {name, email, organisation}`` (the shape quote acceptance takes); both at once is an error."""
    if not isinstance(data, dict) or not ({"signerName", "signerEmail"} & data.keys()):
        return data
    if "signer" in data:
        raise ValueError("signer: give either signer {name, email} or signerName/signerEmail, not both")
    flat = dict(data)
    signer: dict[str, Any] = {"name": flat.pop("signerName", None), "email": flat.pop("signerEmail", None)}
    if "organisation" in flat:
        signer["organisation"] = flat.pop("organisation")
    flat["signer"] = {k: v for k, v in signer.items() if v is not None}
    return flat


class SignatureCreate(Strict):
    """Sign a version. Preferred shape: ``signer: {name, email, organisation}`` (as on quote acceptance);
    the flat ``signerName``/``signerEmail``/``organisation`` spelling is accepted too."""

    signer: Signer
    role: Literal["customer", "provider"]
    version: int | None = Field(default=None, ge=1, description="defaults to the current version")

    @model_validator(mode="before")
    @classmethod
    def _accept_flat_signer(cls, data: Any) -> Any:
        return nest_flat_signer(data)

"""Request bodies of the auth API, validated before anything else runs (FastAPI + pydantic)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")  # the same rule as data.users


def _email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 254 or not EMAIL_SHAPE.match(email):
        raise ValueError("not a valid email address")
    return email


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    @field_validator("*", mode="before")
    @classmethod
    def _text_only(cls, value: object) -> object:
        # Postgres text holds neither NUL nor lone surrogates: refuse them here as a 422 naming the
        # field, before they reach the database and come back as a 500 with a traceback.
        if isinstance(value, str) and ("\x00" in value or not _encodable(value)):
            raise ValueError("contains a NUL byte or invalid text")
        return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Registration(_Body):
    email: Annotated[str, AfterValidator(_email)]
    password: str = Field(min_length=8, max_length=1024)


class Credentials(_Body):
    # no shape rule at sign-in: a malformed email is simply an unknown one (same answer)
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(_Body):
    refresh_token: str = Field(min_length=1, max_length=256)


class LogoutRequest(_Body):
    refresh_token: str | None = Field(default=None, max_length=256)
    scope: Literal["local", "others", "global"] = "local"


class PasswordChange(_Body):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


class ForgotPassword(_Body):
    # the shape rule of registration: a malformed address is refused alike for every account
    email: Annotated[str, AfterValidator(_email)]


class PasswordReset(_Body):
    token: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=1024)


class EmailVerification(_Body):
    token: str = Field(min_length=1, max_length=256)

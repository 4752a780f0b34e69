"""One SQL call per state change: each constant calls one function of the private ``auth``
schema (sql/auth/), which runs as one transaction (the pool's connections are autocommit)."""

from __future__ import annotations

from typing import LiteralString

PING: LiteralString = "select 1"

REGISTER_ATTEMPT: LiteralString = "select auth.register_attempt(%s, %s, %s)"
REGISTER: LiteralString = (
    "select user_id, session_id, email from auth.register(%s, %s, %s, %s, %s, %s, %s, %s)"
)

LOGIN_ATTEMPT: LiteralString = (
    "select retry_after, user_id, password_hash from auth.login_attempt(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
LOGIN: LiteralString = "select session_id, email from auth.login(%s, %s, %s, %s, %s, %s, %s)"
REFUND_LOGIN: LiteralString = "select auth.refund_login(%s, %s, %s)"
SIGN_IN_FAILED: LiteralString = "select auth.sign_in_failed(%s, %s, %s)"

REFRESH: LiteralString = (
    "select outcome, retry_after, user_id, session_id, email"
    " from auth.refresh(%s, %s, %s, %s, %s, %s, %s)"
)
LOGOUT: LiteralString = "select auth.logout(%s, %s, %s, %s, %s, %s)"

PASSWORD_ATTEMPT: LiteralString = (
    "select retry_after, email, password_hash"
    " from auth.password_attempt(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
CHANGE_PASSWORD: LiteralString = "select auth.change_password(%s, %s, %s, %s, %s, %s)"

PURGE: LiteralString = "select rate_limits, refresh_tokens, sessions from auth.purge(%s)"

# accounts (contract §12, sql/auth/recovery.sql)
FORGOT_PASSWORD: LiteralString = "select auth.forgot_password(%s, %s, %s, %s, %s, %s, %s, %s)"
RESET_TOKEN_VALID: LiteralString = "select auth.reset_token_valid(%s)"
RESET_PASSWORD: LiteralString = "select auth.reset_password(%s, %s, %s, %s)"
VERIFY_EMAIL: LiteralString = "select auth.verify_email(%s, %s, %s)"
RESEND_VERIFICATION: LiteralString = (
    "select outcome, retry_after from auth.resend_verification(%s, %s, %s, %s, %s, %s)"
)

"""Configuration from the environment (``MILEPOST_*``), with defaults that work out of the box."""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from milepost.kit.db import DEFAULT_DATABASE_URL, Pooler

# A file of MILEPOST_X=value lines (env-file syntax) read by every Settings(); the environment wins over it.
# ``milepost --config FILE`` sets it, so that server processes started by ``serve`` read the same file.
CONFIG_FILE_VARIABLE = "MILEPOST_CONFIG_FILE"
MAKE_SECRET_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MILEPOST_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file()
        if path is None:
            return init_settings, env_settings
        return init_settings, env_settings, DotEnvSettingsSource(settings_cls, env_file=path)

    database_url: str = DEFAULT_DATABASE_URL
    # Platform fee taken from the freelancer's side at each release, in basis points (1000 = 10%).
    fee_bps: int = Field(default=1000, ge=0, le=10_000)
    # Disputes: the other party must answer within this many days, or the opener wins.
    dispute_response_days: int = Field(default=7, ge=1)
    # A window of its own for the client or the freelancer when they are the one to answer (unset: the
    # one above), as Freelancer.com gives the two sides different ones.
    dispute_client_response_days: int | None = Field(default=None, ge=1)
    dispute_freelancer_response_days: int | None = Field(default=None, ge=1)
    # An unresolved dispute goes to the staff queue as overdue after this many days.
    dispute_mediation_days: int = Field(default=14, ge=1)
    # Funding overdue: reminders to the client this many days after the fund-by date, then an escalation to
    # the project's billing contact. Each step is taken once; a missed step is skipped when a later one is
    # due (see schedule.ladders).
    funding_reminder_days: list[int] = Field(default_factory=lambda: [0, 3, 7])
    funding_escalation_days: int = Field(default=10, ge=0)
    # Review overdue: reminders to the client this many days before the review period ends.
    review_reminder_days: list[int] = Field(default_factory=lambda: [3, 1])
    # A cancellation request the freelancer leaves unanswered this many days is granted (the escrow goes
    # back to the client), as on Upwork; a reminder goes to the freelancer this many days before.
    cancellation_answer_days: int = Field(default=7, ge=1)
    cancellation_reminder_days: list[int] = Field(default_factory=lambda: [2])
    # How often the background worker (in ``serve``, or ``milepost worker``) runs the due work.
    schedule_interval_seconds: float = Field(default=5.0, gt=0)
    # HTTP: the largest JSON body accepted, and the largest uploaded file.
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # Run background work (webhook delivery, e-mail, time-driven work) inside the server process.
    run_worker: bool = True
    # Webhooks may only reach public addresses unless this is set (see webhooks/addresses.py).
    webhook_allow_private_networks: bool = False
    # Uploaded files, stored by SHA-256.
    files_dir: str = "milepost-files"
    # E-mail through SMTP. Without a host, e-mail is off: in-app notifications only, and no e-mail is
    # queued at all (switching it on later does not send a backlog of old news).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    # "none": plain SMTP; "starttls": upgrade the connection; "ssl": TLS from the first byte (port 465).
    smtp_tls: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=20.0, gt=0)
    # CA certificates (PEM) to trust for the SMTP server's TLS certificate, besides the system's (a relay
    # with a private CA). The certificate and host name are always checked.
    smtp_ca_file: str | None = None
    mail_from: str = "Milepost <milepost@localhost>"
    # Where people reach this Milepost: links in e-mails point here.
    public_url: str = "http://127.0.0.1:8000"
    # Signs the web app's CSRF tokens. Unset: a random key made when the settings are loaded, which is fine
    # for one process but not for several behind one address (a form served by one would be refused by
    # another, and every restart invalidates open forms): set it to the same long random value everywhere.
    secret_key: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))
    # How long a token from POST /v1/tokens works, in days (it can be revoked sooner).
    token_lifetime_days: int = Field(default=90, ge=1, le=3650)
    # How long a web session (the browser's cookie) works, in hours: a working day, so that a browser
    # left signed in on a shared or lost computer does not stay a way into someone's money for weeks.
    # The session does not slide with use (that would cost a write per request); sign in again after.
    web_session_hours: int = Field(default=12, ge=1, le=24 * 90)
    # Review context: which matcher relates evidence to acceptance criteria. "auto" and "semantic":
    # sentence embeddings run offline on the CPU, with the keyword rule beside them (review/semantic.py);
    # "keywords": the keyword rule alone. "embeddings" is the old name of "semantic".
    review_matcher: Literal["auto", "semantic", "keywords", "embeddings"] = "auto"
    # Review context: an optional LLM reviewer, asked for a verdict on each criterion (see review/llm.py).
    # Off unless the URL is set; then the criteria and the evidence's text are sent to it. The base URL
    # of an OpenAI-compatible API (http://127.0.0.1:11434/v1 for a local Ollama,
    # https://api.openai.com/v1), the model to ask, its API key if it wants one, and how long one
    # request may take in all, in seconds.
    review_llm_url: str | None = None
    review_llm_model: str = ""
    review_llm_key: SecretStr | None = None
    review_llm_timeout: float = Field(default=20.0, gt=0, le=120)
    # Payment providers that deposits and payouts may use, comma-separated; the first is the default.
    # Known: "manual" (bank transfer, confirmed by staff) and "sandbox" (settles at once, with no money
    # behind it: for demos and tests only, never where the money is real, since anyone could deposit any
    # amount). ``make run`` and ``milepost demo`` enable "sandbox,manual".
    providers: str = "manual"
    # Stripe (provider "stripe": card deposits through Checkout, payouts to Connect accounts). Required
    # when MILEPOST_PROVIDERS names it, unused otherwise: the secret API key, the webhook endpoints'
    # signing secrets (whsec_..., comma-separated: the account's endpoint and the Connect endpoint, and
    # an old one while a secret is rolled), how old a signed event may be, in seconds, the API's
    # address (Stripe's own unless set: a proxy, or a stand-in in tests), and how long one call to it may
    # take, in seconds (the library's own default is 80; a deposit's call is made in its request, where
    # on SQLite the unit of work may already hold the write lock, so a slow Stripe must not hold every
    # writer for long).
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    stripe_api_base: str | None = None
    stripe_timeout_seconds: float = Field(default=15, gt=0, le=80)
    # Money that can be reversed weeks later (a card can be charged back) waits in the wallet's pending
    # balance this many days per provider before it can be paid out (JSON: {"stripe": 5}, as Upwork
    # holds earnings 5 days); a provider not named clears at once. Whether pending money may fund
    # escrow meanwhile: off by default, because escrow released to a freelancer who is then paid out
    # is beyond recovery if the card is charged back; on, clients fund at once and the platform carries
    # that risk (a chargeback takes back what it can and records the rest as the platform's loss).
    clearing_days: dict[str, int] = Field(default_factory=lambda: {"stripe": 5})
    fund_from_pending: bool = False

    @property
    def enabled_providers(self) -> tuple[str, ...]:
        """The enabled providers' names, the default first (checked when the settings load)."""
        return tuple(name.strip() for name in self.providers.split(","))

    # Tamper evidence an intruder with write access to the database cannot recompute: with a key, every
    # journal entry and audit event also carries an HMAC-SHA256 (see kit/macs.py), which `ledger verify`
    # checks. "<key id>:<secret>", the secret at least 32 characters, kept outside the database. Unset:
    # no MACs are written, plain hashes only, and verify says the MACs were not checked.
    ledger_key: SecretStr | None = None
    # Retired ledger keys, which still verify the rows they signed: "<id>:<secret>,<id>:<secret>".
    ledger_old_keys: SecretStr | None = None

    # PostgreSQL behind a connection pooler. "none": a direct connection. "transaction": a pooler in
    # transaction mode (pgbouncer pool_mode = transaction; also right for pgbouncer in session mode): no
    # server-side prepared statements, no session settings, and the claim mark held in a transaction of
    # its own (kit/db.py, kit/liveness.py). Ignored for SQLite.
    database_pooler: Pooler = "none"
    # Health and metrics. /readyz wants a heartbeat from a scheduler (``milepost worker``, or the thread
    # of ``serve`` with run_worker on) younger than this many seconds: a few scheduler intervals.
    heartbeat_max_age_seconds: float = Field(default=30.0, gt=0)
    # Prometheus metrics at /metrics: a 404 unless this is set, then only with
    # "Authorization: Bearer <token>". At least 16 characters.
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    # Production start-up. The CSRF key read from a file (mode 0600, one line) instead of
    # MILEPOST_SECRET_KEY, so that the key stays out of the environment (``make run`` keeps one in
    # .milepost-secret-key). Proxies (IP addresses or CIDR networks, comma-separated) whose
    # X-Forwarded-For and X-Forwarded-Proto are believed: from any other peer those headers are ignored,
    # and the client is the peer itself (see kit/proxies.py). Default: none.
    secret_key_file: str | None = None
    trusted_proxies: str = ""

    @property
    def secret_key_is_persistent(self) -> bool:
        """Whether the CSRF key was given (MILEPOST_SECRET_KEY or its file) rather than made at start-up:
        only a given key is the same in every server process and after a restart."""
        return "secret_key" in self.model_fields_set or self.secret_key_file is not None

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(item.strip(), strict=False)
            for item in self.trusted_proxies.split(",")
            if item.strip()
        )

    def _check_production(self) -> None:
        try:
            self.trusted_networks  # noqa: B018 (parsed here so that a typo stops the start)
        except ValueError as error:
            raise ValueError(
                f"MILEPOST_TRUSTED_PROXIES={self.trusted_proxies!r}: {error} (give IP addresses or "
                "networks such as 10.0.0.0/8, comma-separated)"
            ) from None
        if self.secret_key_file is not None:
            if "secret_key" in self.model_fields_set:
                raise ValueError(
                    "MILEPOST_SECRET_KEY and MILEPOST_SECRET_KEY_FILE are both set: keep one of them"
                )
            self.secret_key = SecretStr(_read_secret_file(self.secret_key_file))
        given = self.secret_key.get_secret_value()
        if self.secret_key_is_persistent and len(given) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"the secret key must be at least {MIN_SECRET_KEY_LENGTH} characters; make one "
                f"with: {MAKE_SECRET_KEY}"
            )

    @model_validator(mode="after")
    def _check_schedules(self) -> Settings:
        if any(
            day < 0 or day >= self.funding_escalation_days for day in self.funding_reminder_days
        ):
            raise ValueError(
                "funding_reminder_days must be between 0 and funding_escalation_days (exclusive)"
            )
        if any(day <= 0 for day in self.review_reminder_days):
            raise ValueError("review_reminder_days must be positive (days before the period ends)")
        if any(
            day <= 0 or day >= self.cancellation_answer_days
            for day in self.cancellation_reminder_days
        ):
            raise ValueError(
                "cancellation_reminder_days must be between 0 and cancellation_answer_days "
                "(exclusive: days before the request is granted)"
            )
        self._check_providers()
        self._check_review_llm()
        from milepost.kit.macs import ledger_keys

        ledger_keys(self)  # a malformed key stops the start, rather than the first write
        self._check_production()
        return self

    def _check_providers(self) -> None:
        from milepost.wallets.providers import PROVIDERS

        names = self.enabled_providers
        known = ", ".join(sorted(PROVIDERS))
        if any(not name for name in names):
            raise ValueError(
                f"MILEPOST_PROVIDERS={self.providers!r}: name at least one provider, comma-separated "
                f"(known: {known})"
            )
        for provider, days in self.clearing_days.items():
            if provider not in PROVIDERS or not 0 <= days <= 120:
                raise ValueError(
                    f"MILEPOST_CLEARING_DAYS: {provider!r}: {days!r}; give known providers "
                    f"({known}) and days from 0 to 120"
                )
        unknown = [name for name in names if name not in PROVIDERS]
        if unknown:
            raise ValueError(
                f"MILEPOST_PROVIDERS names unknown provider(s) {', '.join(unknown)}; known: {known}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"MILEPOST_PROVIDERS={self.providers!r} names a provider twice")
        if "stripe" in names:
            missing = [
                name
                for name, value in (
                    ("MILEPOST_STRIPE_SECRET_KEY", self.stripe_secret_key),
                    ("MILEPOST_STRIPE_WEBHOOK_SECRET", self.stripe_webhook_secret),
                )
                if value is None or not value.get_secret_value().strip()
            ]
            if missing:
                raise ValueError(
                    f"MILEPOST_PROVIDERS names stripe, but {' and '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} not set"
                )

    def _check_review_llm(self) -> None:
        if self.review_llm_url is not None and not self.review_llm_url.strip():
            self.review_llm_url = None  # MILEPOST_REVIEW_LLM_URL= (empty) means off
        if self.review_llm_url is None:
            return
        parsed = urlparse(self.review_llm_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(
                f"MILEPOST_REVIEW_LLM_URL={self.review_llm_url!r} is not an http(s) URL (give the "
                "API's base URL, such as http://127.0.0.1:11434/v1)"
            )
        if not self.review_llm_model.strip():
            raise ValueError(
                "MILEPOST_REVIEW_LLM_URL is set without MILEPOST_REVIEW_LLM_MODEL: name the model to ask"
            )


def config_file() -> Path | None:
    """The configuration file named by MILEPOST_CONFIG_FILE, if any."""
    value = os.environ.get(CONFIG_FILE_VARIABLE, "").strip()
    return Path(value) if value else None


def config_file_problem() -> str | None:
    """Why the configuration file cannot be used (it is missing, or names a setting that does not
    exist, which would otherwise be ignored in silence), or None."""
    path = config_file()
    if path is None:
        return None
    if not path.is_file():
        return f"the configuration file {path} does not exist (from --config or {CONFIG_FILE_VARIABLE})"
    from dotenv import dotenv_values

    try:
        names = dotenv_values(path).keys()
    except OSError as error:
        return f"cannot read the configuration file {path}: {error.strerror}"
    known = {f"MILEPOST_{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(name for name in names if name.upper() not in known)
    if unknown:
        return (
            f"the configuration file {path} names unknown setting(s) {', '.join(unknown)} "
            "(each line is MILEPOST_<NAME>=value)"
        )
    return None


def _read_secret_file(name: str) -> str:
    path = Path(name)
    try:
        mode = path.stat().st_mode
        key = path.read_text().strip()
    except FileNotFoundError:
        raise ValueError(
            f"MILEPOST_SECRET_KEY_FILE {path} does not exist; make it with: umask 077; "
            f"{MAKE_SECRET_KEY} > {path}"
        ) from None
    except OSError as error:
        raise ValueError(f"cannot read MILEPOST_SECRET_KEY_FILE {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"MILEPOST_SECRET_KEY_FILE {path} can be read by other users: chmod 600 {path}"
        )
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""One typed configuration: a TOML file plus `DSARBOT_<SECTION>__<KEY>` environment variables.

Secrets belong in the environment (e.g. `DSARBOT_ZENDESK__API_TOKEN`); the file documents every
key (`config/dsarbot.example.toml`). Loading validates everything once, at start, and an error
names the key and says how to fix it.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "DSARBOT_"
#: Desk agent logins: safe as a bare TOML key and inside an audit actor (`agent:<login>`).
AGENT_LOGIN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: Hash formats of werkzeug.security.generate_password_hash.
PASSWORD_HASH_PREFIXES = ("scrypt:", "pbkdf2:")


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message says which and how to fix it."""


@dataclass
class ServiceConfig:
    data_dir: str = "data"  # cases, audit trail, attachments and exports live here
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"  # public URL of this service (links in mails and Slack)
    secret_key: str = ""  # signs sessions and links; generated into the data dir when empty
    vault_key: str = ""  # Fernet key of the encrypted files; generated into the data dir when empty
    log_level: str = "INFO"
    shop_name: str = "Demo Shop"
    privacy_address: str = "confidentialite@shop.example"  # our own mailbox: the loop guard knows it
    dpo_name: str = ""  # who signs the letters (a person or "Data Protection Officer"); empty = the office
    dpo_email: str = ""  # the DPO's contact in letters; empty = privacy_address
    postal_address: str = ""  # the controller's postal address on the letterhead, one line per "\n"


@dataclass
class StoreConfig:
    url: str = ""  # empty or tinydb:// = embedded store in service.data_dir; postgresql://... at scale


@dataclass
class AuditConfig:
    key: str = ""  # when set, the chain is an HMAC with this key (keep it outside the data dir)


@dataclass
class JurisdictionConfig:
    country: str = "FR"  # ISO 3166 code known to the `holidays` package; "" = weekends only
    subdivision: str = ""  # e.g. "57" (Alsace-Moselle; "alsace-moselle" also works), "ENG", "BY"
    timezone: str = "Europe/Paris"
    authority: str = "CNIL"  # the supervisory authority named in letters (Art. 15(1)(f), 12(4))


@dataclass
class RemindersConfig:
    offsets_days: list[int] = field(default_factory=lambda: [7, 3, 1])
    extension_decision_days_before: int = 5  # remind to decide on an extension before month one ends
    digest_hour: int = 9
    unassigned_escalation_days: int = 3


@dataclass
class MailboxConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 993
    ssl: bool = True
    username: str = ""
    password: str = ""
    folder: str = "INBOX"
    processed_folder: str = ""  # move processed mail here; empty = flag it \\Seen instead
    starttls: bool = False  # upgrade a plain connection (port 143) with STARTTLS when ssl = false
    poll_seconds: int = 60  # safety-net poll (and the only mode when the server has no IDLE)
    use_idle: bool = True
    idle_renew_seconds: int = 25 * 60  # RFC 2177: re-issue IDLE before the server's 29 minutes
    timeout_seconds: int = 30  # network timeout of every IMAP command
    max_message_bytes: int = 60 * 1024 * 1024  # larger: headers only, flagged for an agent to read in the mailbox
    max_attachment_bytes: int = 20 * 1024 * 1024  # larger attachments are listed on the message, not kept
    max_attachments: int = 30  # attachments kept per message; the others are listed, not kept
    max_failures: int = 5  # a message failing intake this many times goes to quarantine for an agent


@dataclass
class MaildirConfig:
    enabled: bool = False
    path: str = ""  # a Maildir (tmp/, new/, cur/) the mail server delivers the privacy mailbox to
    poll_seconds: int = 10  # how often new/ is read
    max_message_bytes: int = 60 * 1024 * 1024  # larger: headers only, flagged for an agent
    max_attachment_bytes: int = 20 * 1024 * 1024
    max_attachments: int = 30
    max_failures: int = 5  # a mail failing intake this many times goes to quarantine


@dataclass
class SmtpConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str = ""
    password: str = ""
    from_address: str = "confidentialite@shop.example"
    from_name: str = "Demo Shop - Privacy"
    timeout_seconds: int = 30


@dataclass
class HelpdeskConfig:
    kind: str = "builtin"  # builtin | zendesk | freshdesk
    webhook_max_bytes: int = 1_048_576  # larger webhook bodies are refused (413) before anything else
    inbox_batch: int = 50  # webhook deliveries turned into cases per store transaction
    drain_quiet_ms: int = 250  # the drain waits while webhooks arrived this recently (acks come first) ...
    drain_max_delay_seconds: int = 30  # ... but never longer than this behind the oldest delivery


def _freshdesk_field_names() -> dict[str, str]:
    return {key: f"cf_dsar_{key}" for key in ("case_ref", "right", "received", "due", "extended_due", "state")}


@dataclass
class ZendeskConfig:
    base_url: str = ""  # https://yourshop.zendesk.com
    email: str = ""  # the agent the API token belongs to (auth is {email}/token:{api_token})
    api_token: str = ""  # DSARBOT_ZENDESK__API_TOKEN
    webhook_secret: str = ""  # the webhook's signing secret (DSARBOT_ZENDESK__WEBHOOK_SECRET)
    field_ids: dict[str, int] = field(default_factory=dict)  # case_ref, right, received, due, extended_due, state
    webhook_max_skew_seconds: int = 300  # signed timestamps further from our clock are refused (replays)
    timeout_seconds: int = 15


@dataclass
class FreshdeskConfig:
    base_url: str = ""  # https://yourshop.freshdesk.com
    api_key: str = ""  # DSARBOT_FRESHDESK__API_KEY
    webhook_secret: str = ""  # shared secret the automation rule sends in `webhook_header`
    webhook_header: str = "X-Dsarbot-Webhook-Secret"
    field_names: dict[str, str] = field(default_factory=_freshdesk_field_names)  # our key -> cf_ name
    timeout_seconds: int = 15


@dataclass
class SlackConfig:
    enabled: bool = False
    bot_token: str = ""
    signing_secret: str = ""
    channel: str = ""
    approvers: list[str] = field(default_factory=list)  # Slack user ids allowed to approve
    escalation_user: str = ""  # the DPO or lead to mention on escalation
    api_base_url: str = ""  # tests point this at a local server
    show_personal_data: bool = False
    language: str = "en"  # language of the Slack texts (a catalogue in bot/locales)


@dataclass
class VerificationConfig:
    code_ttl_minutes: int = 10
    max_attempts: int = 5  # wrong codes per case before it locks and waits for an agent
    code_digits: int = 6
    document_max_bytes: int = 10 * 1024 * 1024  # ID documents and proofs of mandate (PDF, JPEG, PNG)


@dataclass
class FormConfig:
    enabled: bool = True  # the public request form at /request
    max_per_address_per_hour: int = 3
    max_per_ip_per_hour: int = 20


@dataclass
class DeliveryConfig:
    method: str = "portal"  # portal | encrypted_email
    link_ttl_days: int = 7
    purge_after_days: int = 30  # exports are deleted this long after delivery (never before the link expires)
    unlock_minutes: int = 15  # after a right portal code, how long the download button works (once)


@dataclass
class DeskConfig:
    agents: dict[str, str] = field(default_factory=dict)  # login -> password hash (`dsarbot agent add LOGIN`)
    session_idle_minutes: int = 60  # an agent idle this long logs in again
    session_max_hours: int = 12  # and after this long in any case
    login_max_failures: int = 5  # failed logins per login name within the window before it is locked
    ip_max_failures: int = 20  # failed logins per client address within the window
    login_window_minutes: int = 15
    soon_days: int = 7  # a case due within this many days shows as "due soon"


@dataclass
class DraftingConfig:
    enabled: bool = True
    repeat_window_days: int = 90  # show earlier requests by the same verified email within this many days
    redaction_rules: str = "config/redaction.yaml"  # Art. 15(4) rules; relative paths: cwd, then the checkout
    annex_max_rows: int = 300  # rows per table in the PDF/HTML annex (all rows stay in JSON/CSV); 0 = no limit


@dataclass
class PlaybooksConfig:
    register: str = "config/register.yaml"
    directory: str = "playbooks"
    sources: list[dict[str, Any]] = field(default_factory=list)  # one table per connected system
    timeout_seconds: int = 30  # default time limit of one source in one gathering (a source's `timeout` wins)
    max_workers: int = 8  # sources asked at the same time


@dataclass
class Config:
    service: ServiceConfig = field(default_factory=ServiceConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    jurisdiction: JurisdictionConfig = field(default_factory=JurisdictionConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    mailbox: MailboxConfig = field(default_factory=MailboxConfig)
    maildir: MaildirConfig = field(default_factory=MaildirConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    helpdesk: HelpdeskConfig = field(default_factory=HelpdeskConfig)
    zendesk: ZendeskConfig = field(default_factory=ZendeskConfig)
    freshdesk: FreshdeskConfig = field(default_factory=FreshdeskConfig)
    slack: SlackConfig = field(default_factory=SlackConfig)
    verification: VerificationConfig = field(default_factory=VerificationConfig)
    form: FormConfig = field(default_factory=FormConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    desk: DeskConfig = field(default_factory=DeskConfig)
    playbooks: PlaybooksConfig = field(default_factory=PlaybooksConfig)
    drafting: DraftingConfig = field(default_factory=DraftingConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.service.data_dir)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    try:
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            if isinstance(value, bool):
                return value
            raise ValueError(value)
        if annotation is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if annotation is str:
            if not isinstance(value, (str, int, float)):
                raise ValueError(value)
            return str(value)
        if origin is list:
            (item_type,) = typing.get_args(annotation)
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise ValueError(value)
            return [_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError(value)
            _, value_type = typing.get_args(annotation)
            return {str(k): _coerce(v, value_type, f"{where}.{k}") for k, v in value.items()}
        return value
    except (TypeError, ValueError):
        kind = getattr(annotation, "__name__", str(annotation))
        raise ConfigError(f"{where}: expected {kind}, got {value!r}") from None


def _build_section(cls: type, values: Mapping[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"[{section}] has no key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    kwargs = {name: _coerce(v, hints[name], f"[{section}] {name}") for name, v in values.items()}
    return cls(**kwargs)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].partition("__")
        overrides.setdefault(section.lower(), {})[key.lower()] = value
    return overrides


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Read the TOML file (if any), apply environment variables, then `overrides`, and validate."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} not found; copy config/dsarbot.example.toml") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    hints = typing.get_type_hints(Config)
    for section, values in _env_overrides(environ).items():
        if section not in sections:
            raise ConfigError(f"environment variable {ENV_PREFIX}{section.upper()}__...: no section [{section}]")
        raw.setdefault(section, {}).update(values)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}]; known sections: {', '.join(sections)}")
    built = {name: _build_section(hints[name], raw.get(name, {}), name) for name in sections}
    config = Config(**built)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Cross-field checks. Integration-specific checks run when the integration starts."""
    from bot import clock

    try:
        clock.validate_jurisdiction(jurisdiction_of(config))
    except clock.UnknownCalendar as exc:
        raise ConfigError(f"[jurisdiction] {exc}; use a country/subdivision known to the holidays package") from None
    except Exception as exc:  # zoneinfo raises several kinds
        raise ConfigError(f"[jurisdiction] timezone {config.jurisdiction.timezone!r}: {exc}") from None
    if config.helpdesk.kind not in ("builtin", "zendesk", "freshdesk"):
        raise ConfigError("[helpdesk] kind must be builtin, zendesk or freshdesk")
    if config.helpdesk.kind == "zendesk" and not (config.zendesk.base_url and config.zendesk.api_token):
        raise ConfigError("[zendesk] base_url and api_token are required when [helpdesk] kind = \"zendesk\" "
                          "(set DSARBOT_ZENDESK__API_TOKEN in the environment)")
    if config.helpdesk.kind == "freshdesk" and not (config.freshdesk.base_url and config.freshdesk.api_key):
        raise ConfigError("[freshdesk] base_url and api_key are required when [helpdesk] kind = \"freshdesk\" "
                          "(set DSARBOT_FRESHDESK__API_KEY in the environment)")
    if config.slack.enabled and not (config.slack.bot_token and config.slack.signing_secret and config.slack.channel):
        raise ConfigError("[slack] bot_token, signing_secret and channel are required when enabled "
                          "(set DSARBOT_SLACK__BOT_TOKEN and DSARBOT_SLACK__SIGNING_SECRET)")
    if config.delivery.method not in ("portal", "encrypted_email"):
        raise ConfigError("[delivery] method must be portal or encrypted_email")
    if any(o < 0 for o in config.reminders.offsets_days):
        raise ConfigError("[reminders] offsets_days must be days before the due date (0 or more)")
    for login, password_hash in config.desk.agents.items():
        if not AGENT_LOGIN.fullmatch(login):
            raise ConfigError(f"[desk.agents] {login!r}: a login is 1-64 lower-case letters, digits, '.', '_' or '-'")
        if not password_hash.startswith(PASSWORD_HASH_PREFIXES):
            raise ConfigError(f"[desk.agents] {login}: not a password hash (never put a password in the config); "
                              f"create the line with `dsarbot agent add {login}`")
    if min(config.desk.session_idle_minutes, config.desk.session_max_hours, config.desk.login_max_failures,
           config.desk.ip_max_failures, config.desk.login_window_minutes) < 1:
        raise ConfigError("[desk] session and login limits must be 1 or more")
    if config.drafting.repeat_window_days < 0:
        raise ConfigError("[drafting] repeat_window_days must be 0 or more (0 = do not look for repeats)")
    if config.drafting.annex_max_rows < 0:
        raise ConfigError("[drafting] annex_max_rows must be 0 (no limit) or more")
    if config.playbooks.timeout_seconds <= 0 or config.playbooks.max_workers < 1:
        raise ConfigError("[playbooks] timeout_seconds must be positive and max_workers at least 1")
    if config.mailbox.enabled and not (config.mailbox.host and config.mailbox.username):
        raise ConfigError("[mailbox] host and username are required when enabled "
                          "(set DSARBOT_MAILBOX__PASSWORD in the environment)")
    if config.mailbox.enabled and config.mailbox.ssl and config.mailbox.starttls:
        raise ConfigError("[mailbox] ssl and starttls exclude each other: ssl for port 993, starttls for 143")
    if config.mailbox.idle_renew_seconds >= 29 * 60 or config.mailbox.idle_renew_seconds < 60:
        raise ConfigError("[mailbox] idle_renew_seconds must be between 60 and 1739 (servers drop IDLE after "
                          "29 minutes, RFC 2177)")
    if config.mailbox.poll_seconds < 5:
        raise ConfigError("[mailbox] poll_seconds must be at least 5")
    if config.maildir.poll_seconds < 1 or config.maildir.max_failures < 1:
        raise ConfigError("[maildir] poll_seconds and max_failures must be at least 1")
    if config.smtp.enabled and config.smtp.ssl and config.smtp.starttls:
        raise ConfigError("[smtp] ssl and starttls exclude each other: ssl for port 465, starttls for 587")
    if "@" not in config.smtp.from_address:
        raise ConfigError("[smtp] from_address must be an email address")
    if config.verification.code_digits < 6:
        raise ConfigError("[verification] code_digits must be at least 6")
    if not 1 <= config.verification.max_attempts <= 10:
        raise ConfigError("[verification] max_attempts must be between 1 and 10")
    if not 1 <= config.verification.code_ttl_minutes <= 60:
        raise ConfigError("[verification] code_ttl_minutes must be between 1 and 60 (codes are short-lived)")
    if config.delivery.link_ttl_days < 1:
        raise ConfigError("[delivery] link_ttl_days must be at least 1")


def jurisdiction_of(config: Config):
    from bot.clock import Jurisdiction

    return Jurisdiction(country=config.jurisdiction.country or None,
                        subdivision=config.jurisdiction.subdivision or None,
                        timezone=config.jurisdiction.timezone)

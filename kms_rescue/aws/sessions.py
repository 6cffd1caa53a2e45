"""Identities and sessions: which credentials to try, and how to turn each into botocore clients.

Discovery reads the AWS config and credentials files exactly as the AWS CLI does, through botocore's own config
loader: ``AWS_CONFIG_FILE``, ``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``,
a profile's ``endpoint_url`` and ``services`` sections are all honoured by the botocore session itself.

Sessions never prompt (an MFA-protected role profile raises :class:`~kms_rescue.aws.classify.NeedsMFA` unless the
caller passes a prompter), never reach the EC2 instance metadata service or a container credentials endpoint for a
profile that has no credentials, and resolve credentials under a time limit so that a hanging ``credential_process``
times out alone.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.client
import botocore.config
import botocore.hooks
import botocore.loaders
import botocore.session
import botocore.utils
from botocore import exceptions as bexc
from botocore.credentials import (
    AssumeRoleProvider,
    CanonicalNameCredentialSourcer,
    ContainerProvider,
    CredentialProvider,
    CredentialResolver,
    EnvProvider,
    InstanceMetadataProvider,
    ReadOnlyCredentials,
)
from botocore.errorfactory import ClientExceptionsFactory
from botocore.hooks import HierarchicalEmitter
from botocore.utils import EVENT_ALIASES, JSONFileCache

from kms_rescue import __version__
from kms_rescue.aws import credential_process
from kms_rescue.aws.classify import CredentialTimeout, NeedsMFA
from kms_rescue.aws.redact import Redactor
from kms_rescue.aws.results import IdentitySpec
from kms_rescue.errors import UsageError

ENV_IDENTITY = "env"
ROLE_ARN_RE = re.compile(
    r"\Aarn:aws[a-zA-Z-]*:iam::[0-9]{12}:role/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]+)\Z", re.ASCII
)
#: Where the AWS CLI caches assumed-role credentials (so an MFA code entered there is reused here).
CLI_CACHE_DIR = os.path.join("~", ".aws", "cli", "cache")
SESSION_NAME = "kms-rescue"
SESSION_NAME_RE = re.compile(r"\A[\w+=,.@-]{2,64}\Z", re.ASCII)
#: The environment variable naming the AWS CLI's profile (AWS CLI User Guide, "Configuring environment variables").
PROFILE_ENV = "AWS_PROFILE"

#: How botocore creates the clients its credential providers use (STS for a role): with plugins disabled, where the
#: installed botocore has that (older releases created them as plain clients).
_create_nested_client: Callable[..., Any] = getattr(
    botocore.utils, "create_nested_client", lambda session, service, **kwargs: session.create_client(service, **kwargs))

_SHARED_LOCK = threading.Lock()
_SHARED_LOADER: botocore.loaders.Loader | None = None
_SHARED_EVENTS: HierarchicalEmitter | None = None


def _shared_loader() -> botocore.loaders.Loader:
    """One data loader for every session: service models are parsed once, not once per identity."""
    global _SHARED_LOADER
    with _SHARED_LOCK:
        if _SHARED_LOADER is None:
            _SHARED_LOADER = botocore.loaders.create_loader()
        return _SHARED_LOADER


def _shared_events() -> HierarchicalEmitter:
    """botocore's built-in event handlers, registered once. They are stateless functions, and each client works
    on its own copy of the emitter, so every session can start from the same one: registering them per session
    costs more CPU than the calls themselves when many identities are probed at once."""
    global _SHARED_EVENTS
    with _SHARED_LOCK:
        if _SHARED_EVENTS is None:
            events = HierarchicalEmitter()
            botocore.session.Session(event_hooks=events)  # registers the built-in handlers into ``events``
            _SHARED_EVENTS = events
    _install_client_class_cache()
    return _SHARED_EVENTS


def shared_events() -> HierarchicalEmitter:
    """The event emitter every kms-rescue session starts from: a handler registered on it (botocore's public
    ``register``/``unregister``) reaches every client created afterwards, e.g. the ``--debug`` request log."""
    return _shared_events()


#: botocore builds each service's modeled exception classes once per session; from the one shared loader they are
#: the same for every session, and sharing them also makes ``except client.exceptions.X`` hold across identities.
_SHARED_EXCEPTIONS = ClientExceptionsFactory()

_CLIENT_CLASSES: dict[tuple[str, str], Any] = {}
_SERVICE_MODELS: dict[tuple[str, str], Any] = {}
#: botocore renames legacy event names through a table (``EVENT_ALIASES``), caching each answer per emitter; every
#: client starts with an empty cache, and the renaming, redone for every handler each client registers, is a
#: large share of creating a client. The answers depend only on that fixed table, so our sessions share one cache.
_ALIAS_CACHE: dict[str, str] = {}


def _install_client_class_cache() -> None:
    """Build each client class, and each service model, once for sessions on the shared emitter.

    botocore builds a new client class (one method per operation) and a new service model for every client it
    creates. The class depends only on the service model and the emitter's ``creating-client-class`` handlers,
    which are the same for every session on :func:`_shared_events`; the model only on the (shared) loader's JSON,
    and nothing changes it after it is built, while its lazily built shapes and error-code table (walked on every
    error response) are the costly part. Other sessions (the lab's, a user's) are left alone."""
    creator = botocore.client.ClientCreator
    original = getattr(creator, "_create_client_class", None)
    original_model = getattr(creator, "_load_service_model", None)
    if original is None or original_model is None or getattr(creator, "_kms_rescue_class_cache", False):
        return

    def shared(self: Any) -> bool:
        emitter = getattr(getattr(self, "_event_emitter", None), "_emitter", None)
        return emitter is not None and emitter is _SHARED_EVENTS and getattr(self, "_loader", None) is _SHARED_LOADER

    def once(cache: dict[tuple[str, str], Any], key: tuple[str, str], make: Callable[[], Any]) -> Any:
        with _SHARED_LOCK:
            found = cache.get(key)
        if found is None:  # built outside the lock (it loads JSON); the first one stored wins
            made = make()
            with _SHARED_LOCK:
                found = cache.setdefault(key, made)
        return found

    def create_client_class(self: Any, service_name: str, service_model: Any) -> type:
        if not shared(self):
            return original(self, service_name, service_model)
        key = (service_name, str(getattr(service_model, "api_version", "")))
        return once(_CLIENT_CLASSES, key, lambda: original(self, service_name, service_model))

    def load_service_model(self: Any, service_name: str, api_version: str | None = None) -> Any:
        if not shared(self):
            return original_model(self, service_name, api_version)
        return once(_SERVICE_MODELS, (service_name, str(api_version)),
                    lambda: original_model(self, service_name, api_version))

    aliaser = botocore.hooks.EventAliaser
    original_copy = aliaser.__copy__

    def copy_aliaser(self: Any) -> Any:
        new = original_copy(self)
        if self._alias_name_cache is _ALIAS_CACHE:
            new._alias_name_cache = _ALIAS_CACHE
        return new

    setattr(aliaser, "__copy__", copy_aliaser)  # noqa: B010
    setattr(creator, "_create_client_class", create_client_class)  # noqa: B010
    setattr(creator, "_load_service_model", load_service_model)  # noqa: B010
    setattr(creator, "_kms_rescue_class_cache", True)  # noqa: B010


#: Parsed AWS config and credentials files, by the files' state (path, mtime, size, inode): every identity's
#: session would otherwise parse both files twice (its own settings, then its credential chain), which is most of
#: the CPU a session costs. Callers get deep copies; a changed file has a new state and is parsed afresh.
_PARSED: dict[tuple[Any, ...], Any] = {}
_PARSED_MAX = 16


def _file_state(path: str) -> tuple[Any, ...]:
    full = os.path.expandvars(os.path.expanduser(path))
    try:
        st = os.stat(full)
    except OSError:
        return (full,)
    return (full, st.st_mtime_ns, st.st_size, st.st_ino)


def _parsed_once(kind: str, paths: Sequence[str], parse: Callable[[], Any]) -> Any:
    """``parse()`` (one of botocore's own config parsers), once per state of the files it reads."""
    key = (kind, *(_file_state(p) for p in paths))
    with _SHARED_LOCK:
        found = _PARSED.get(key)
    if found is None:
        found = parse()  # an error (a malformed file) is raised to the caller, and nothing is kept
        with _SHARED_LOCK:
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[key] = found
    return copy.deepcopy(found)


def _parsed_file(kind: str, parse: Callable[[str], Any], path: str) -> Any:
    return _parsed_once(kind, [path], lambda: parse(path))


def _share_parsed_config(session: botocore.session.Session) -> None:
    """Give ``session`` the profiles botocore would parse and merge for it (``full_config``), from the cache."""
    if getattr(session, "_config", False) is not None:  # already loaded, or not the botocore we know
        return
    try:
        files = [str(session.get_config_variable(name) or "") for name in ("config_file", "credentials_file")]
        parsed = _parsed_once("full_config", files, lambda: session.full_config)
    except Exception:  # left to botocore, which reports a broken file where and as it always has
        setattr(session, "_config", None)  # noqa: B010
        return
    setattr(session, "_config", parsed)  # noqa: B010


def _base_session(profile: str | None = None) -> botocore.session.Session:
    session = botocore.session.Session(profile=profile, event_hooks=_shared_events(),
                                       include_builtin_handlers=False)
    session.register_component("data_loader", _shared_loader())
    register = getattr(session, "_register_internal_component", None)
    if callable(register):  # the modeled exception classes, built once per service rather than once per client
        register("exceptions_factory", _SHARED_EXCEPTIONS)
    _share_parsed_config(session)
    events: Any = session.get_component("event_emitter")
    if isinstance(events, botocore.hooks.EventAliaser) and getattr(events, "_event_aliases", None) == EVENT_ALIASES:
        setattr(events, "_alias_name_cache", _ALIAS_CACHE)  # noqa: B010
    session.user_agent_extra = f"kms-rescue/{__version__}"
    return session


# --- discovery -------------------------------------------------------------------------------------------------


def _profile_kind(cfg: Mapping[str, Any]) -> str:
    if cfg.get("sso_session") or cfg.get("sso_start_url"):
        return "sso"
    if cfg.get("role_arn"):
        return "web_identity" if cfg.get("web_identity_token_file") else "assume_role"
    if cfg.get("credential_process"):
        return "credential_process"
    if cfg.get("aws_access_key_id"):
        return "static"
    return "unknown"


def load_profiles() -> dict[str, dict[str, Any]]:
    """Every profile of the AWS config and credentials files (as botocore merges them)."""
    session = _base_session()
    try:
        profiles = session.full_config.get("profiles", {})
    except bexc.ConfigParseError as exc:
        raise UsageError(f"cannot read the AWS config: {exc}") from None
    return {str(name): dict(cfg) for name, cfg in profiles.items()}


def env_credentials(environ: Mapping[str, str] | None = None) -> tuple[str, str, str | None] | None:
    env = os.environ if environ is None else environ
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return key, secret, env.get("AWS_SESSION_TOKEN") or None
    return None


def role_name(role_arn: str) -> str:
    m = ROLE_ARN_RE.match(role_arn)
    if not m:
        raise UsageError(f"--role-arn {role_arn!r} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    return m["name"]


def discover_identities(
    profiles: Sequence[str] = (),
    role_arns: Sequence[str] = (),
    base_profile: str | None = None,
    *,
    role_session_name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[IdentitySpec]:
    """The identities to probe.

    Default: every profile of the config and credentials files that has a credential source (static keys, SSO,
    a role, a credential process, web identity: a profile that only sets a region is not an identity), plus the
    environment's credentials as ``env``.
    When ``AWS_PROFILE`` names a profile, it is probed first; an ``AWS_PROFILE`` that names no profile raises
    :class:`UsageError`, as the AWS CLI refuses it (unless ``profiles`` is given, which overrides it).
    ``profiles`` narrows to those names (``env`` selects the environment's credentials). Each of ``role_arns``
    adds a role assumed from ``base_profile`` when given, else from each chosen identity. Raises
    :class:`UsageError` for an unknown profile or a malformed role ARN."""
    for arn in role_arns:
        role_name(arn)  # validate early
    known = load_profiles()
    has_env = env_credentials(environ) is not None
    chosen: list[IdentitySpec] = []
    available = sorted(known) + ([ENV_IDENTITY] if has_env else [])

    def spec_for(name: str) -> IdentitySpec:
        if name == ENV_IDENTITY and name not in known:
            if not has_env:
                raise UsageError("--profile env: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
            return IdentitySpec(name=ENV_IDENTITY, source="env", kind="env")
        if name not in known:
            shown = ", ".join(available) if available else "none"
            raise UsageError(f"no profile named {name!r} in the AWS config (available: {shown})")
        cfg = known[name]
        return IdentitySpec(
            name=name, source="profile", profile=name, kind=_profile_kind(cfg),
            role_arn=cfg.get("role_arn"), mfa_serial=cfg.get("mfa_serial"),
        )

    if role_session_name is not None and not SESSION_NAME_RE.match(role_session_name):
        raise UsageError(f"--role-session-name {role_session_name!r}: 2 to 64 of letters, digits and =,.@_-")
    names = list(dict.fromkeys(profiles)) if profiles else sorted(
        n for n in known if _profile_kind(known[n]) != "unknown"
    )
    named = (os.environ if environ is None else environ).get(PROFILE_ENV) or None
    if named is not None and not profiles:
        # The AWS CLI refuses an AWS_PROFILE that names no profile (a missing `default` is no error for it); the
        # probe still tries every identity, AWS_PROFILE's first (--profile narrows, and overrides AWS_PROFILE).
        if named not in known and named != "default":
            shown = ", ".join(available) if available else "none"
            raise UsageError(f"AWS_PROFILE={named!r} names no profile of the AWS config (available: {shown}): "
                             "fix it, unset it, or pass --profile")
        if named in names:
            names = [named, *(n for n in names if n != named)]
    for name in names:
        chosen.append(spec_for(name))
    if not profiles and has_env and ENV_IDENTITY not in known:
        chosen.append(IdentitySpec(name=ENV_IDENTITY, source="env", kind="env"))

    if role_arns:
        bases = [spec_for(base_profile)] if base_profile else list(chosen)
        if not bases:
            raise UsageError("--role-arn needs a profile to assume it from: pass --base-profile or --profile")
        for arn in dict.fromkeys(role_arns):
            for base in bases:
                chosen.append(IdentitySpec(
                    name=f"{role_name(arn)}@{base.name}", source="assume_role", profile=base.profile,
                    role_arn=arn, base=base.name, kind="assume_role", session_name=role_session_name,
                ))
    elif base_profile:
        raise UsageError("--base-profile only makes sense with --role-arn")
    if not chosen:
        raise UsageError(
            "no identities to try: the AWS config has no profiles and no credentials are set in the environment "
            "(set AWS_CONFIG_FILE, or pass --profile)"
        )
    return chosen


# --- sessions --------------------------------------------------------------------------------------------------


class _ReadThroughCache(MutableMapping[str, Any]):
    """Reads the AWS CLI's assumed-role cache; writes go to memory unless ``write`` is set (the wizard, which
    prompts for MFA, writes so that the next AWS CLI command reuses the credentials)."""

    def __init__(self, directory: str, write: bool = False) -> None:
        self._disk = JSONFileCache(os.path.expanduser(directory))
        self._mem: dict[str, Any] = {}
        self._write = write

    def __getitem__(self, key: str) -> Any:
        if key in self._mem:
            return self._mem[key]
        return self._disk[key]

    def __contains__(self, key: object) -> bool:
        return key in self._mem or (isinstance(key, str) and key in self._disk)

    def __setitem__(self, key: str, value: Any) -> None:
        self._mem[key] = value
        if self._write:
            with contextlib.suppress(OSError):
                self._disk[key] = value

    def __delitem__(self, key: str) -> None:
        self._mem.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._mem)

    def __len__(self) -> int:
        return len(self._mem)


def _refuse_mfa(prompt: str) -> str:
    raise NeedsMFA("the profile's role needs an MFA code and `report` never prompts")


@dataclass(frozen=True)
class SessionOptions:
    """How sessions are opened. ``timeout`` bounds credential resolution and each call's connect and read;
    ``max_attempts`` is the total number of attempts of each call (the first included) in botocore's standard retry
    mode. ``mfa_prompter`` None means "never prompt" (needs_mfa); ``write_cli_cache`` lets assumed-role credentials
    be saved for the AWS CLI to reuse."""

    timeout: float = 10.0
    max_attempts: int = 4
    mfa_prompter: Callable[[str], str] | None = None
    write_cli_cache: bool = False
    max_pool_connections: int = 10
    #: Where the credential processes started for these sessions are tracked (killed by the investigation's end).
    process_groups: credential_process.ProcessGroups | None = None

    def client_config(self) -> botocore.config.Config:
        return botocore.config.Config(
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            # ``total_max_attempts`` counts the first attempt (botocore's ``max_attempts`` counts only the retries:
            # 4 there makes 5 attempts).
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            max_pool_connections=self.max_pool_connections,
        )


def _tune(session: botocore.session.Session, options: SessionOptions) -> None:
    resolver = session.get_component("credential_provider")
    profile = session.get_config_variable("profile") or "default"
    # credential_process: in a process group of its own, killed with it at the timeout (and at the end of the
    # command at the latest), for the profile and for every source_profile its role is assumed from.
    popen = credential_process.group_popen(options.timeout, options.process_groups or credential_process.GROUPS)
    credential_process.replace(resolver, AssumeRoleProvider.METHOD, _assume_role_provider(session, profile, options,
                                                                                          resolver, popen))
    # A profile without credentials must not fall through to the instance metadata service or a container
    # endpoint (the profile was chosen explicitly; those are other identities).
    resolver.remove("iam-role")
    resolver.remove("container-role")
    # The chain's file providers parse their file on every load: the parses are shared as the session's are (left
    # alone if a botocore release names its parser differently).
    for method, attribute, kind in (("config-file", "_config_parser", "config"),
                                    ("shared-credentials-file", "_ini_parser", "credentials")):
        with contextlib.suppress(bexc.UnknownCredentialError):
            provider = resolver.get_provider(method)
            parse = getattr(provider, attribute, None)
            if callable(parse):
                setattr(provider, attribute, functools.partial(_parsed_file, kind, parse))
    credential_process.install(resolver, profile, lambda: session.full_config, popen)


def _assume_role_provider(session: botocore.session.Session, profile: str, options: SessionOptions,
                          resolver: CredentialResolver, popen: Callable[..., Any]) -> AssumeRoleProvider:
    """botocore's assume-role provider, built as botocore builds it, but never prompting unless allowed, reading
    (and optionally writing) the AWS CLI's cache, and resolving a ``source_profile`` whose ``credential_process``
    runs through ``popen``. A role profile's ``credential_source`` is still served by the environment, container
    and instance metadata providers (the chain's own, taken before they leave it)."""
    sources: list[CredentialProvider] = [EnvProvider()]
    for method in (ContainerProvider.METHOD, InstanceMetadataProvider.METHOD):
        with contextlib.suppress(bexc.UnknownCredentialError):
            sources.append(resolver.get_provider(method))
    return AssumeRoleProvider(
        load_config=lambda: session.full_config,
        client_creator=functools.partial(_create_nested_client, session),
        # botocore documents the cache as any mapping with get, set and contains (the stubs say dict).
        cache=_ReadThroughCache(CLI_CACHE_DIR, write=options.write_cli_cache),  # type: ignore[arg-type]
        profile_name=profile,
        prompter=options.mfa_prompter or _refuse_mfa,
        credential_sourcer=CanonicalNameCredentialSourcer(sources),
        profile_provider_builder=credential_process.SourceProfileProviders(session, popen=popen, cache={}),
    )


def resolve_credentials(
    session: botocore.session.Session, timeout: float
) -> ReadOnlyCredentials:
    """The session's credentials, frozen, within ``timeout`` seconds (else :class:`CredentialTimeout`).

    Resolution runs in a daemon thread: whatever hangs in it (a credential_process, an SSO or STS endpoint)
    cannot hold up the other identities or the process's exit."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            creds = session.get_credentials()
            box["creds"] = creds.get_frozen_credentials() if creds is not None else None
        except BaseException as exc:  # handed to the caller below
            box["exc"] = exc

    thread = threading.Thread(target=work, name="kms-rescue-credentials", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise CredentialTimeout(f"credentials did not resolve within {timeout:g} s")
    if "exc" in box:
        raise box["exc"]
    creds = box.get("creds")
    if creds is None or not creds.access_key:
        raise bexc.NoCredentialsError()
    return creds


def open_session(
    spec: IdentitySpec,
    options: SessionOptions,
    *,
    environ: Mapping[str, str] | None = None,
    redactor: Redactor | None = None,
    region: str | None = None,
) -> botocore.session.Session:
    """A botocore session for ``spec`` with resolved credentials (assumed-role identities: the base identity's
    session; :func:`assume_role` then makes the role's). The resolved credentials are handed to ``redactor``.

    ``region`` (the key's Region: ``--region`` or the AWS CLI's Region chain) becomes the session's Region, as the
    AWS CLI's ``--region`` does: every client botocore creates on its own, such as the STS client that assumes a
    role profile's role (and each hop of a ``source_profile`` chain), uses it, even when the profile sets none."""
    if spec.source == "env":
        env_creds = env_credentials(environ)
        if env_creds is None:
            raise bexc.NoCredentialsError()
        session = _base_session()
        # The default profile still supplies region and endpoint settings, as for the AWS CLI.
        session.set_credentials(*env_creds)
    else:
        session = _base_session(spec.profile)
        _tune(session, options)
    if region:
        session.set_config_variable("region", region)
    creds = resolve_credentials(session, options.timeout)
    if redactor is not None:
        redactor.add(creds.access_key, creds.secret_key, creds.token)
    return session


def session_with_credentials(
    profile: str | None, access_key: str, secret_key: str, token: str | None, region: str | None = None
) -> botocore.session.Session:
    """A session with explicit credentials that keeps ``profile``'s endpoint settings (and its Region unless
    ``region`` is given)."""
    session = _base_session(profile)
    session.set_credentials(access_key, secret_key, token)
    if region:
        session.set_config_variable("region", region)
    return session


PROBE_SERVICES = ("sts", "kms", "iam", "cloudtrail")


#: Services being warmed up on a background thread: creating one of their clients waits for the warm-up instead
#: of parsing the same models a second time alongside it.
_WARMING: dict[str, threading.Event] = {}
_WARM_UP_THREAD = "kms-rescue-warm-up"


def warm_up(
    region: str, options: SessionOptions, services: Sequence[str] = PROBE_SERVICES, *, background: bool = False
) -> None:
    """Load the service models, endpoint rules and client classes once, before many threads need them at the same
    moment (each would otherwise parse the same JSON models in parallel, under one GIL). Makes no request.

    With ``background``, only the first service (the one every identity calls first) is loaded here; the rest load
    on a thread while the first requests are in flight, and :func:`create_client` waits for them."""
    session = _base_session()
    session.set_credentials("warm-up", "warm-up")

    def load(service: str) -> None:
        with contextlib.suppress(Exception):
            client = create_client(session, service, region, options)
            client.can_paginate("list_grants")  # loads the service's paginator models too

    if not background or len(services) < 2:
        for service in services:
            load(service)
        return
    first, rest = services[0], list(services[1:])
    pending = {service: threading.Event() for service in rest}
    with _SHARED_LOCK:
        for service, event in pending.items():
            _WARMING.setdefault(service, event)
    load(first)

    def work() -> None:
        for service in rest:
            try:
                load(service)
            finally:
                pending[service].set()
                with _SHARED_LOCK:
                    if _WARMING.get(service) is pending[service]:
                        del _WARMING[service]

    threading.Thread(target=work, name=_WARM_UP_THREAD, daemon=True).start()


def create_client(
    session: botocore.session.Session, service: str, region: str, options: SessionOptions
) -> Any:
    """A client of ``service`` in ``region`` (IAM: its global endpoint unless an endpoint URL is configured)."""
    warming = _WARMING.get(service)
    if warming is not None and threading.current_thread().name != _WARM_UP_THREAD:
        warming.wait(options.timeout)
    return session.create_client(service, region_name=region, config=options.client_config())


__all__ = [
    "ENV_IDENTITY",
    "SessionOptions",
    "create_client",
    "discover_identities",
    "load_profiles",
    "open_session",
    "resolve_credentials",
    "role_name",
    "session_with_credentials",
    "shared_events",
    "warm_up",
]

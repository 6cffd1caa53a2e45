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
import functools
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.config
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
from botocore.utils import JSONFileCache

from kms_rescue.aws import credential_process
from kms_rescue.aws.classify import CredentialTimeout, NeedsMFA
from kms_rescue.aws.redact import Redactor
from kms_rescue.aws.results import IdentitySpec
from kms_rescue.aws.runtime import PROBE_SERVICES, AwsRuntime, build_client
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
#: installed botocore has that public helper (older releases created them as plain clients).
_create_nested_client: Callable[..., Any] = getattr(
    botocore.utils, "create_nested_client", lambda session, service, **kwargs: session.create_client(service, **kwargs))


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


def load_profiles(*, runtime: AwsRuntime | None = None) -> dict[str, dict[str, Any]]:
    """Every profile of the AWS config and credentials files (as botocore merges them; parsed once per
    ``runtime``)."""
    try:
        return (runtime or AwsRuntime()).profiles()
    except bexc.ConfigParseError as exc:
        raise UsageError(f"cannot read the AWS config: {exc}") from None


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
    runtime: AwsRuntime | None = None,
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
    known = load_profiles(runtime=runtime)
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
    #: Where the credential processes started for these sessions are tracked (killed by the investigation's end);
    #: None: the runtime's (killed when it closes).
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


def _tune(session: botocore.session.Session, options: SessionOptions, groups: credential_process.ProcessGroups) -> None:
    resolver = session.get_component("credential_provider")
    profile = session.get_config_variable("profile") or "default"
    # credential_process: in a process group of its own, killed with it at the timeout (and at the end of the
    # command at the latest), for the profile and for every source_profile its role is assumed from.
    popen = credential_process.group_popen(options.timeout, options.process_groups or groups)
    credential_process.replace(resolver, AssumeRoleProvider.METHOD, _assume_role_provider(session, profile, options,
                                                                                          resolver, popen))
    # A profile without credentials must not fall through to the instance metadata service or a container
    # endpoint (the profile was chosen explicitly; those are other identities).
    resolver.remove("iam-role")
    resolver.remove("container-role")
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
    runtime: AwsRuntime | None = None,
) -> botocore.session.Session:
    """A botocore session for ``spec`` with resolved credentials (assumed-role identities: the base identity's
    session; :func:`assume_role` then makes the role's). The resolved credentials are handed to ``redactor``.

    ``region`` (the key's Region: ``--region`` or the AWS CLI's Region chain) becomes the session's Region, as the
    AWS CLI's ``--region`` does: every client botocore creates on its own, such as the STS client that assumes a
    role profile's role (and each hop of a ``source_profile`` chain), uses it, even when the profile sets none.
    The session is opened on ``runtime`` (a fresh one when not given), whose process groups track the
    ``credential_process`` commands it starts unless ``options.process_groups`` is set."""
    rt = runtime or AwsRuntime()
    if spec.source == "env":
        env_creds = env_credentials(environ)
        if env_creds is None:
            raise bexc.NoCredentialsError()
        session = rt.session()
        # The default profile still supplies region and endpoint settings, as for the AWS CLI.
        session.set_credentials(*env_creds)
    else:
        session = rt.session(spec.profile)
        _tune(session, options, rt.process_groups)
    if region:
        session.set_config_variable("region", region)
    creds = resolve_credentials(session, options.timeout)
    if redactor is not None:
        redactor.add(creds.access_key, creds.secret_key, creds.token)
    return session


def session_with_credentials(
    profile: str | None, access_key: str, secret_key: str, token: str | None, region: str | None = None, *,
    runtime: AwsRuntime | None = None,
) -> botocore.session.Session:
    """A session with explicit credentials that keeps ``profile``'s endpoint settings (and its Region unless
    ``region`` is given)."""
    session = (runtime or AwsRuntime()).session(profile)
    session.set_credentials(access_key, secret_key, token)
    if region:
        session.set_config_variable("region", region)
    return session


def warm_up(
    region: str, options: SessionOptions, services: Sequence[str] = PROBE_SERVICES, *, background: bool = False,
    runtime: AwsRuntime,
) -> None:
    """Load the service models, endpoint rules and paginators into ``runtime`` once, before many threads need them
    (see :meth:`AwsRuntime.warm_up`). Makes no request."""
    runtime.warm_up(region, options.client_config(), services, background=background)


def create_client(
    session: botocore.session.Session, service: str, region: str, options: SessionOptions, *,
    runtime: AwsRuntime | None = None, credentials: ReadOnlyCredentials | None = None,
) -> Any:
    """A client of ``service`` in ``region`` (IAM: its global endpoint unless an endpoint URL is configured), with
    ``credentials`` in place of the session's own when given. With ``runtime``, built once per runtime (see
    :meth:`AwsRuntime.client`)."""
    config = options.client_config()
    if runtime is not None:
        return runtime.client(session, service, region, config, credentials, variant=options)
    return build_client(session, service, region, config, credentials)


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
    "warm_up",
]

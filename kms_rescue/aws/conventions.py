"""The AWS CLI's conventions for the profile and the Region, applied where kms-rescue has the same choice to make.

- **Region** (AWS CLI User Guide, "Configuring environment variables for the AWS CLI" and the AWS SDKs and Tools
  Reference Guide, "AWS Region"): the ``--region`` option, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else the
  ``region`` setting of the profile in use. The profile in use is the one ``--profile`` names (when exactly one is
  given), else ``AWS_PROFILE``, else ``default``.
- **AWS_PROFILE** names the profile the AWS CLI uses. An unknown one is an error for the CLI, and so it is here
  (exit 2). kms-rescue's probe still tries every identity unless ``--profile`` narrows it: AWS_PROFILE's identity is
  probed first and named on stderr. ``--profile`` overrides AWS_PROFILE, as it does for the AWS CLI.

Only configuration is read here (no AWS call is made).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kms_rescue.aws.sessions import ENV_IDENTITY, PROFILE_ENV, load_profiles
from kms_rescue.errors import UsageError

REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")


@dataclass(frozen=True)
class RegionChoice:
    """The Region a command uses, and where it came from (``--region``, ``AWS_REGION``, ``AWS_DEFAULT_REGION`` or
    ``profile NAME``); ``region`` None when nothing in the chain sets one."""

    region: str | None
    source: str | None = None


def aws_profile(environ: Mapping[str, str] | None = None) -> str | None:
    """The profile ``AWS_PROFILE`` names (None when unset or empty)."""
    env = os.environ if environ is None else environ
    return env.get(PROFILE_ENV) or None


def profile_in_use(profiles: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> str:
    """The profile whose settings the AWS CLI would use: the one ``--profile`` (given once), else AWS_PROFILE, else
    ``default``."""
    chosen = [p for p in dict.fromkeys(profiles) if p != ENV_IDENTITY]
    if len(chosen) == 1:
        return chosen[0]
    return aws_profile(environ) or "default"


def choose_region(
    explicit: str | None,
    *,
    profiles: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    known: Mapping[str, Any] | None = None,
) -> RegionChoice:
    """The AWS CLI's Region chain (see the module docstring). Values are returned as found: the caller validates
    them (a Region from the environment or a config file is checked as strictly as ``--region``)."""
    if explicit is not None:
        return RegionChoice(explicit, "--region")
    env = os.environ if environ is None else environ
    for name in REGION_ENVS:
        if env.get(name):
            return RegionChoice(env[name], name)
    profile = profile_in_use(profiles, environ)
    try:
        profiles_known = load_profiles() if known is None else known
    except UsageError:
        return RegionChoice(None)
    region = (profiles_known.get(profile) or {}).get("region")
    if isinstance(region, str) and region:
        return RegionChoice(region, f"profile {profile}")
    return RegionChoice(None)


__all__ = ["PROFILE_ENV", "REGION_ENVS", "RegionChoice", "aws_profile", "choose_region",
           "profile_in_use"]

"""Turn whatever a boto3 call raised into an :data:`~kms_rescue.aws.results.Outcome`, an error code and a
redacted message. Nothing outside ``kms_rescue.aws`` ever sees a ``ClientError``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from botocore import exceptions as bexc

from kms_rescue.aws.redact import Redactor, redact
from kms_rescue.aws.results import Outcome


class NeedsMFA(Exception):
    """Raised by our MFA prompter: ``report`` never prompts, so an MFA-protected role profile stops here."""


class CredentialTimeout(Exception):
    """Credential resolution (e.g. a hanging ``credential_process``) did not finish in time."""


ACCESS_DENIED = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "UnauthorizedAccess", "Forbidden",
})
NOT_FOUND = frozenset({"NotFoundException", "NoSuchEntity", "NoSuchEntityException", "ResourceNotFoundException"})
THROTTLED = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
    "RequestThrottled", "RequestThrottledException", "SlowDown", "LimitExceededException",
})
INVALID_CREDENTIALS = frozenset({
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
    "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "TokenRefreshRequired", "RequestExpired",
})
SSO_ERRORS = (bexc.SSOTokenLoadError, bexc.UnauthorizedSSOTokenError, bexc.TokenRetrievalError, bexc.SSOError)
# KMS: "Credential should be scoped to a valid region" / "... scoped to correct region"; key ARNs of another region.
_REGION_MESSAGE = re.compile(r"scoped to (?:a valid|correct|the correct) region|region '?[a-z0-9-]+'? is wrong"
                             r"|not valid in this region|different region|in a different region", re.I)


@dataclass(frozen=True)
class Classified:
    outcome: Outcome
    error_code: str | None
    message: str | None


def classify_client_error(code: str, message: str, *, request_region: str | None = None) -> Outcome:
    """The outcome for an AWS error code and message."""
    if code in ACCESS_DENIED:
        return "access_denied"
    if code in THROTTLED:
        return "throttled"
    if _REGION_MESSAGE.search(message or ""):
        return "wrong_region"
    if code in ("InvalidArnException", "NotFoundException") and request_region and _names_other_region(
        message, request_region
    ):
        return "wrong_region"
    if code in NOT_FOUND:
        return "not_found"
    if code == "DisabledException":
        return "key_disabled"
    if code == "KMSInvalidStateException":
        low = (message or "").lower()
        if "pending deletion" in low or "pendingdeletion" in low:
            return "pending_deletion"
        if "disabled" in low:
            return "key_disabled"
        return "error"
    if code in INVALID_CREDENTIALS:
        return "invalid_credentials"
    if code == "InvalidSignatureException":
        return "invalid_credentials"
    return "error"


def _names_other_region(message: str | None, region: str) -> bool:
    regions = re.findall(r"arn:aws[a-zA-Z-]*:kms:([a-z0-9-]+):", message or "")
    return any(r != region for r in regions)


def classify_exception(
    exc: BaseException, *, redactor: Redactor | None = None, request_region: str | None = None
) -> Classified:
    """Classify any exception a boto3 call or credential resolution raised."""
    scrub = redactor.scrub if redactor is not None else redact

    def msg(text: str) -> str | None:
        flat = scrub(" ".join(str(text).split())) or ""  # scrubbed whole: a cut must not leave half a secret
        return flat if len(flat) <= 400 else flat[:400] + "…"

    if isinstance(exc, bexc.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or "")
        return Classified(classify_client_error(code, message, request_region=request_region), code, msg(message))
    if isinstance(exc, NeedsMFA):
        return Classified("needs_mfa", "MFARequired", msg(str(exc)))
    if isinstance(exc, CredentialTimeout):
        return Classified("timeout", "CredentialTimeout", msg(str(exc)))
    if isinstance(exc, SSO_ERRORS):
        return Classified("sso_expired", type(exc).__name__, msg(str(exc)))
    if isinstance(exc, (bexc.ConnectTimeoutError, bexc.ReadTimeoutError)):
        return Classified("timeout", type(exc).__name__, msg(str(exc)))
    if isinstance(exc, (bexc.NoCredentialsError, bexc.PartialCredentialsError, bexc.ProfileNotFound,
                        bexc.CredentialRetrievalError, bexc.NoRegionError)):
        return Classified("no_credentials", type(exc).__name__, msg(str(exc)))
    if isinstance(exc, bexc.InvalidConfigError):
        return Classified("no_credentials", type(exc).__name__, msg(str(exc)))
    if isinstance(exc, bexc.EndpointConnectionError):
        return Classified("error", "EndpointConnectionError", msg(str(exc)))
    if isinstance(exc, bexc.BotoCoreError):
        return Classified("error", type(exc).__name__, msg(str(exc)))
    if isinstance(exc, TimeoutError):
        return Classified("timeout", "TimeoutError", msg(str(exc)))
    return Classified("error", type(exc).__name__, msg(str(exc)))


def hint_for(outcome: str, profile: str | None) -> str | None:
    """A one-line hint for an identity whose credentials could not be used."""
    if outcome == "sso_expired":
        return f"aws sso login --profile {profile}" if profile else "aws sso login"
    if outcome == "needs_mfa":
        target = f" --profile {profile}" if profile else ""
        return (f"this role profile needs an MFA code: run any AWS CLI command with{target} once to cache "
                "credentials, or use the interactive `kms-rescue` session, which prompts")
    if outcome == "invalid_credentials":
        return "the credentials are expired or not recognised: refresh them"
    if outcome == "no_credentials":
        return "no usable credentials for this identity"
    if outcome == "timeout":
        return "credentials or the endpoint did not answer in time (see --timeout)"
    return None

"""Secrets never reach an output: the redactor's shape patterns (one case per documented credential format, each
naming the AWS page it comes from), its exact-value layer seeded from every profile of the config files and the
caches, and the red-team case end to end: a failing ``credential_process`` that prints another profile's secret
key and session token to stderr, run through the real CLI against the lab (docs/report.md, "Secrets")."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from kms_rescue.aws.classify import classify_exception
from kms_rescue.aws.known_secrets import known_credentials
from kms_rescue.aws.redact import REDACTED, Redactor, redact
from kms_rescue.cli.app import main
from kms_rescue.lab import Lab
from tests.helpers.cli import clean_env, lab_secrets
from tests.helpers.paths import SCRIPT

IAM_IDS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-prefixes"
ACCESS_KEYS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html"
TEMP_CREDS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_use-resources.html"
SIGV4 = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html"
SSO_TOKEN = "https://docs.aws.amazon.com/singlesignon/latest/OIDCAPIReference/API_CreateToken.html"
CRED_PROCESS = "https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-sourcing-external.html"


def _b64(n: int) -> str:
    """``n`` random characters of the standard base64 alphabet, mixing cases and digits (a fresh fake secret)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return "Aa0" + "".join(secrets.choice(alphabet) for _ in range(n - 3))


def _urlsafe(n: int) -> str:
    return "Aa0-" + secrets.token_urlsafe(n)[: n - 4]


TOKEN = _b64(356)
URLSAFE_SECRET = _urlsafe(40)
URLSAFE_TOKEN = _urlsafe(128)

# (page, fact, text, the secret that must not survive)
SHAPES = [
    (ACCESS_KEYS, "an access key id looks like AKIAIOSFODNN7EXAMPLE",
     "key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE"),
    (IAM_IDS, "ASIA: temporary (AWS STS) access keys", "temporary ASIAIOSFODNN7EXAMPLE key", "ASIAIOSFODNN7EXAMPLE"),
    (IAM_IDS, "ABIA: AWS STS service bearer token", "bearer id ABIAIOSFODNN7EXAMPLE", "ABIAIOSFODNN7EXAMPLE"),
    (IAM_IDS, "ACCA: context-specific credential", "ACCAIOSFODNN7EXAMPLE in a message", "ACCAIOSFODNN7EXAMPLE"),
    (ACCESS_KEYS, "a secret access key looks like wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY (40 characters)",
     "bare secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here", "wJalrXUtnFEMI"),
    (ACCESS_KEYS, "a secret access key, in a config-file spelling",
     "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    (ACCESS_KEYS, "a 40-character secret in the URL-safe alphabet, after a word naming it",
     f"the secret key {URLSAFE_SECRET} was refused", URLSAFE_SECRET),
    (TEMP_CREDS, "temporary credentials carry a session token (long base64)",
     f"token {TOKEN} expired", TOKEN),
    (TEMP_CREDS, "a session token in JSON output, slashes escaped",
     json.dumps({"SessionToken": TOKEN}).replace("/", "\\/"), TOKEN[-22:]),
    (TEMP_CREDS, "a session token inside a message, no key word, JSON-escaped slashes",
     "boom: " + TOKEN.replace("/", "\\/") + " end", TOKEN[-22:]),
    (TEMP_CREDS, "a URL-safe token standing alone (its tail must not survive either)",
     f"failed: {URLSAFE_TOKEN}", URLSAFE_TOKEN[-22:]),
    (TEMP_CREDS, "two tokens joined by padding",
     f"{TOKEN[:100]}=={TOKEN[100:]}", TOKEN[-22:]),
    (SIGV4, "the X-Amz-Security-Token query parameter carries the session token",
     "X-Amz-Security-Token=IQoJb3JpZ2luX2VjEExample&X-Amz-Date=1", "IQoJb3JpZ2luX2VjEExample"),
    (SIGV4, "a SigV4 signature is 64 hex characters", "Signature=" + "0a" * 32, "0a" * 32),
    (SIGV4, "the Credential= scope starts with the access key id",
     "Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/kms/aws4_request", "AKIAIOSFODNN7EXAMPLE"),
    (SSO_TOKEN, "an IAM Identity Center access token travels as a bearer token",
     "Authorization: Bearer aoaAAAAAGExampleSsoToken0123:MGQCExample", "aoaAAAAAGExampleSsoToken0123"),
    (SSO_TOKEN, "accessToken and refreshToken in the SSO cache's JSON",
     '{"accessToken": "aoaExampleAccessToken0123", "refreshToken": "aorExampleRefresh0123"}',
     "aoaExampleAccessToken0123"),
]


@pytest.mark.parametrize(("page", "fact", "text", "secret"), SHAPES, ids=[s[1][:60] for s in SHAPES])
def test_credential_formats_are_redacted(page: str, fact: str, text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out, f"{fact} ({page})"
    assert REDACTED in out


KEPT = [
    (IAM_IDS, "AROA/AIDA unique ids name deleted principals in a key policy: they are not credentials",
     "Principal AROAEXAMPLEID1234567 and AIDAEXAMPLEID1234567"),
    ("https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-id-key-ARN",
     "a key ARN is not a credential",
     "arn:aws:kms:us-east-1:111122223333:key/0d5d6a3c-8d7e-4c1f-9b2a-6f1e2d3c4b5a"),
    ("https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html",
     "role names are at most 64 characters: a long role ARN with a path is kept",
     "arn:aws:iam::111122223333:role/service-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef"),
]


@pytest.mark.parametrize(("page", "fact", "text"), KEPT, ids=[k[1][:60] for k in KEPT])
def test_what_is_not_a_credential_is_kept(page: str, fact: str, text: str) -> None:
    assert redact(text) == text, f"{fact} ({page})"


def test_a_message_is_scrubbed_before_it_is_cut() -> None:
    """Messages are cut at 400 characters: cutting first would leave the head of a secret that straddles the cut."""
    r = Redactor()
    secret = "lab-" + secrets.token_urlsafe(24)
    r.add(secret)
    text = "x" * 390 + " " + secret + " and more"
    exc = ClientError({"Error": {"Code": "AccessDenied", "Message": text}}, "GetKeyPolicy")
    message = classify_exception(exc, redactor=r).message or ""
    assert secret[:8] not in message


def test_known_values_are_scrubbed_with_escaped_slashes() -> None:
    r = Redactor()
    r.add("lab/secret/value-01")
    assert "lab" not in r.scrub_known(json.dumps({"m": "lab/secret/value-01"}).replace("/", "\\/"))


# --- every credential of the configuration ---------------------------------------------------------------------


def test_known_credentials_cover_every_profile_and_cache(aws_home: Path) -> None:
    config_secret, creds_secret, token, cli_secret, sso_token = (f"fake-{i}-" + secrets.token_urlsafe(12)
                                                                 for i in range(5))
    (aws_home / "config").write_text(
        "[profile a]\naws_access_key_id = FAKEKEYID0000001\n"
        f"aws_secret_access_key = {config_secret}\n"
        "[profile b]\ncredential_process = /bin/false\nregion = us-east-1\n", encoding="utf-8")
    (aws_home / "credentials").write_text(
        f"[c]\naws_access_key_id = FAKEKEYID0000002\naws_secret_access_key = {creds_secret}\n"
        f"aws_session_token = {token}\n", encoding="utf-8")
    cli = aws_home / ".aws" / "cli" / "cache"
    sso = aws_home / ".aws" / "sso" / "cache"
    cli.mkdir(parents=True)
    sso.mkdir(parents=True)
    (cli / "x.json").write_text(json.dumps({"Credentials": {"SecretAccessKey": cli_secret}}), encoding="utf-8")
    (sso / "y.json").write_text(json.dumps({"accessToken": sso_token, "region": "us-east-1"}), encoding="utf-8")
    (sso / "link.json").symlink_to("/dev/zero")  # never followed, never read
    found = known_credentials(environ={"AWS_SECRET_ACCESS_KEY": "fake-env-secret-value"})
    for value in (config_secret, creds_secret, token, cli_secret, sso_token, "fake-env-secret-value",
                  "FAKEKEYID0000001", "FAKEKEYID0000002"):
        assert value in found
    assert "/bin/false" not in found and "us-east-1" not in found


# --- the red-team case, end to end ---------------------------------------------------------------------------



def test_a_failing_credential_process_never_leaks_another_profiles_secret(tmp_path: Path) -> None:
    """Only the broken profile is probed, so nothing of the other profile is resolved in this run: the secret key
    and session token it prints must still appear nowhere (JSON, text, stderr), not even in part."""
    with Lab("healthy-default") as lab:
        assert lab.config_path is not None
        text = Path(lab.config_path).read_text(encoding="utf-8")
        # Another profile's secret key and session token (the lab's admin profile is a role session).
        section = text.split("[profile ")[1:]
        with_token = next(s for s in section if "aws_session_token" in s)
        secret = with_token.split("aws_secret_access_key = ")[1].split()[0]
        token = with_token.split("aws_session_token = ")[1].split()[0]
        leak = tmp_path / "leak.py"
        leak.write_text(f"import sys\nprint('cannot refresh:', {secret!r}, {token!r}, file=sys.stderr)\n"
                        "sys.exit(1)\n", encoding="utf-8")
        config = tmp_path / "config"
        config.write_text(text + f"\n[profile broken]\nregion = {lab.region}\nendpoint_url = {lab.endpoint}\n"
                          f"credential_process = {sys.executable} {leak}\n", encoding="utf-8")
        key = lab.key_arn(lab.scenario.keys[0].id)
        env = clean_env(tmp_path, config)
        outputs: list[str] = []
        for fmt in ("json", "text", "markdown"):
            proc = subprocess.run([str(SCRIPT), "report", key, "-f", fmt, "--profile", "broken", "--no-history"],
                                  env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
            assert proc.returncode in (0, 3, 4, 5), proc.stderr
            outputs += [proc.stdout, proc.stderr]
            if fmt == "json":
                doc = json.loads(proc.stdout)
                broken = next(i for i in doc["identities"] if i["name"] == "broken")
                assert broken["status"] == "no_credentials"
                assert any(REDACTED in (c.get("message") or "") for c in broken["calls"])
        every = lab_secrets(lab.config_path)
    for out in outputs:
        for value in [secret, token, *every]:
            assert value not in out
            for i in range(0, len(value) - 16, 4):  # not a 16-character piece of it either
                assert value[i:i + 16] not in out


def test_error_messages_on_stderr_are_redacted(aws_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An access key id pasted where a profile name goes is echoed back by the error, redacted."""
    (aws_home / "config").write_text("[profile a]\nregion = us-east-1\n", encoding="utf-8")
    key = "arn:aws:kms:us-east-1:111122223333:key/0d5d6a3c-8d7e-4c1f-9b2a-6f1e2d3c4b5a"
    assert main(["report", key, "--profile", "AKIAIOSFODNN7EXAMPLE"]) == 2
    err = capsys.readouterr().err
    assert "no profile named" in err and "AKIAIOSFODNN7EXAMPLE" not in err and REDACTED in err


def test_a_path_of_forty_characters_is_not_taken_for_a_secret_key():
    """A file path of exactly 40 base64-alphabet characters stays readable in an error message; a random secret
    access key of the same length is still redacted."""
    path = "/work/main/tests/fixtures/lint/malformed"
    assert len(path) == 40
    assert redact(f"{path}.json:5:3: invalid JSON") == f"{path}.json:5:3: invalid JSON"
    assert "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" not in redact("x wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY y")

"""Identity discovery and sessions against real AWS config files (no network): what the AWS CLI would read, SSO
without a token, MFA role profiles (never prompt), a hanging credential_process, endpoint settings, and no
fall-through to the instance metadata service."""

from __future__ import annotations

import http.server
import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from botocore import exceptions as bexc

from kms_rescue.aws.classify import CredentialTimeout, NeedsMFA, classify_exception
from kms_rescue.aws.redact import Redactor
from kms_rescue.aws.results import IdentitySpec
from kms_rescue.aws.sessions import SessionOptions, create_client, discover_identities, open_session
from kms_rescue.errors import UsageError

# AWS's documentation example credentials: not secrets.
KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def write(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text), encoding="utf-8")


CONFIG = f"""\
    [default]
    region = us-east-1

    [profile static]
    region = us-east-1
    aws_access_key_id = {KEY}
    aws_secret_access_key = {SECRET}

    [profile dev-sso]
    sso_session = corp
    sso_account_id = 111122223333
    sso_role_name = Admin
    region = us-east-1

    [sso-session corp]
    sso_start_url = https://example.awsapps.com/start
    sso_region = us-east-1

    [profile prod-admin]
    role_arn = arn:aws:iam::111122223333:role/Admin
    source_profile = static
    mfa_serial = arn:aws:iam::111122223333:mfa/alice
    region = us-east-1
    """


def test_discovery_reads_config_and_credentials_files_like_the_cli(aws_home: Path):
    write(aws_home / "config", CONFIG)
    write(aws_home / "credentials", f"""\
        [from-credentials-file]
        aws_access_key_id = {KEY}
        aws_secret_access_key = {SECRET}
        """)
    specs = {s.name: s for s in discover_identities()}
    # A profile that only sets a region is not an identity.
    assert sorted(specs) == ["dev-sso", "from-credentials-file", "prod-admin", "static"]
    assert specs["dev-sso"].kind == "sso"
    assert specs["prod-admin"].kind == "assume_role"
    assert specs["prod-admin"].mfa_serial == "arn:aws:iam::111122223333:mfa/alice"
    assert specs["from-credentials-file"].kind == "static"


def test_environment_credentials_are_the_env_identity(aws_home: Path, monkeypatch: pytest.MonkeyPatch):
    write(aws_home / "config", CONFIG)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    names = [s.name for s in discover_identities()]
    assert names[-1] == "env"
    assert [s.name for s in discover_identities(["env"])] == ["env"]


def test_profile_narrows_and_role_arn_adds_assumed_roles(aws_home: Path):
    write(aws_home / "config", CONFIG)
    specs = discover_identities(["static", "dev-sso"], ["arn:aws:iam::111122223333:role/path/BreakGlass"])
    assert [s.name for s in specs] == ["static", "dev-sso", "BreakGlass@static", "BreakGlass@dev-sso"]
    assumed = specs[2]
    assert (assumed.source, assumed.base, assumed.profile) == ("assume_role", "static", "static")
    based = discover_identities(["static", "dev-sso"], ["arn:aws:iam::111122223333:role/BreakGlass"],
                                "static", role_session_name="break-glass")
    assert [s.name for s in based] == ["static", "dev-sso", "BreakGlass@static"]
    assert based[-1].session_name == "break-glass"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"profiles": ["nope"]}, "no profile named 'nope' in the AWS config (available: default, dev-sso, prod-admin"),
        ({"profiles": ["env"]}, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"),
        ({"role_arns": ["arn:aws:iam::111122223333:user/alice"]}, "is not a role ARN"),
        ({"base_profile": "static"}, "--base-profile only makes sense with --role-arn"),
        ({"role_arns": ["arn:aws:iam::111122223333:role/A"], "base_profile": "nope"}, "no profile named 'nope'"),
        ({"role_arns": ["arn:aws:iam::111122223333:role/A"], "role_session_name": "x"}, "--role-session-name"),
    ],
)
def test_discovery_errors_are_usage_errors(aws_home: Path, kwargs, message):
    write(aws_home / "config", CONFIG)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        discover_identities(**kwargs)


def test_no_identities_at_all_is_a_usage_error(aws_home: Path):
    write(aws_home / "config", "[default]\nregion = us-east-1\n")
    with pytest.raises(UsageError, match="no identities to try"):
        discover_identities()


def spec_of(name: str) -> IdentitySpec:
    return next(s for s in discover_identities([name]))


def test_static_profile_credentials_are_learnt_by_the_redactor(aws_home: Path):
    write(aws_home / "config", CONFIG)
    redactor = Redactor()
    session = open_session(spec_of("static"), SessionOptions(timeout=5), redactor=redactor)
    creds = session.get_credentials()
    assert creds is not None and creds.access_key == KEY
    assert redactor.scrub_known(f"x {KEY} {SECRET} y") == "x [REDACTED] [REDACTED] y"


def test_sso_profile_without_a_token_is_sso_expired(aws_home: Path):
    """An IAM Identity Center profile whose token cache is empty: botocore cannot load a token, nothing is
    fetched over the network, and the identity reads sso_expired (hint: aws sso login)."""
    write(aws_home / "config", CONFIG)
    with pytest.raises(Exception) as info:
        open_session(spec_of("dev-sso"), SessionOptions(timeout=5))
    assert classify_exception(info.value).outcome == "sso_expired"


def test_mfa_role_profile_never_prompts(aws_home: Path, monkeypatch: pytest.MonkeyPatch):
    """`report` never prompts: a role profile with mfa_serial stops with needs_mfa before any STS call."""
    write(aws_home / "config", CONFIG)

    def no_prompt(*_a: object, **_k: object) -> str:
        raise AssertionError("prompted")

    monkeypatch.setattr("getpass.getpass", no_prompt)
    with pytest.raises(NeedsMFA):
        open_session(spec_of("prod-admin"), SessionOptions(timeout=5))


def test_mfa_prompter_is_used_when_given(aws_home: Path):
    write(aws_home / "config", CONFIG)
    asked: list[str] = []

    def prompter(prompt: str) -> str:
        asked.append(prompt)
        raise NeedsMFA("cancelled")

    with pytest.raises(NeedsMFA):
        open_session(spec_of("prod-admin"), SessionOptions(timeout=5, mfa_prompter=prompter))
    assert asked and "MFA" in asked[0]


def _process_profile(home: Path, name: str, script: str) -> None:
    path = home / f"{name}.py"
    path.write_text(script, encoding="utf-8")
    with (home / "config").open("a", encoding="utf-8") as fh:
        fh.write(f"\n[profile {name}]\nregion = us-east-1\ncredential_process = {sys.executable} {path}\n")


def test_hanging_credential_process_times_out_alone_and_is_killed(aws_home: Path):
    write(aws_home / "config", CONFIG)
    pid_file = aws_home / "pid"
    _process_profile(aws_home, "hang", f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                                       "time.sleep(60)\n")
    start = time.monotonic()
    with pytest.raises(CredentialTimeout):
        open_session(spec_of("hang"), SessionOptions(timeout=1))
    assert time.monotonic() - start < 10
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the credential process was left running")


def test_failing_and_working_credential_processes(aws_home: Path):
    write(aws_home / "config", CONFIG)
    _process_profile(aws_home, "broken", "import sys\nsys.stderr.write('no way')\nsys.exit(1)\n")
    _process_profile(aws_home, "works", "import json\nprint(json.dumps({'Version': 1, "
                                        f"'AccessKeyId': {KEY!r}, 'SecretAccessKey': 'proc-secret-value'}}))\n")
    with pytest.raises(bexc.CredentialRetrievalError) as info:
        open_session(spec_of("broken"), SessionOptions(timeout=5))
    assert classify_exception(info.value).outcome == "no_credentials"
    redactor = Redactor()
    open_session(spec_of("works"), SessionOptions(timeout=5), redactor=redactor)
    assert "proc-secret-value" not in (redactor.scrub("saw proc-secret-value") or "")


def test_profile_endpoint_url_and_service_endpoint_env_are_honoured(aws_home: Path, monkeypatch: pytest.MonkeyPatch):
    """Per-profile endpoint_url applies to every service; AWS_ENDPOINT_URL_<SERVICE> overrides it for one."""
    write(aws_home / "config", CONFIG + "    endpoint_url = http://127.0.0.1:4599\n".replace("    ", ""))
    write(aws_home / "config", (aws_home / "config").read_text().replace(
        "[profile static]\n", "[profile static]\nendpoint_url = http://127.0.0.1:4599\n"))
    options = SessionOptions(timeout=5)
    session = open_session(spec_of("static"), options)
    assert create_client(session, "kms", "eu-west-1", options).meta.endpoint_url == "http://127.0.0.1:4599"
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:4600")
    session = open_session(spec_of("static"), options)
    assert create_client(session, "kms", "eu-west-1", options).meta.endpoint_url == "http://127.0.0.1:4600"
    assert create_client(session, "sts", "eu-west-1", options).meta.endpoint_url == "http://127.0.0.1:4599"


def test_a_profile_without_credentials_never_reaches_instance_metadata(aws_home: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    """An explicitly chosen profile without credentials is no_credentials: the EC2 metadata service and the
    container credentials endpoint are other identities, and are not consulted."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        do_PUT = do_GET

        def log_message(self, *_a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url)
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{url}/creds")
        write(aws_home / "config", CONFIG)
        with pytest.raises(bexc.NoCredentialsError):
            open_session(IdentitySpec(name="default", source="profile", profile="default"), SessionOptions(timeout=3))
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []


# --- the config files: a changed one is read again, a broken one is an error ---------------------------------------

def test_a_changed_config_file_is_read_again(aws_home: Path):
    write(aws_home / "config", CONFIG)
    assert [s.name for s in discover_identities(["static"])] == ["static"]
    write(aws_home / "config", CONFIG + f"""
    [profile added-later]
    aws_access_key_id = {KEY}
    aws_secret_access_key = {SECRET}
    """)
    assert "added-later" in [s.name for s in discover_identities()]
    session = open_session(spec_of("added-later"), SessionOptions(timeout=5))
    assert session.get_credentials().access_key == KEY


def test_a_malformed_config_file_is_still_a_usage_error(aws_home: Path):
    write(aws_home / "config", CONFIG)
    discover_identities()  # a good parse in the cache does not hide a later broken file
    (aws_home / "config").write_text("[profile broken\nregion = us-east-1\n", encoding="utf-8")
    with pytest.raises(UsageError, match="cannot read the AWS config"):
        discover_identities()

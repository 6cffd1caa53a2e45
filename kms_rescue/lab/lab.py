"""``Lab``: a scenario served on 127.0.0.1 behind the enforcement gate, as a context manager.

>>> with Lab("sole-admin-deleted") as lab:                           # doctest: +SKIP
...     kms = lab.session("app").client("kms")
...     kms.get_key_policy(KeyId=lab.key_arn("alias/payments"))

Each lab keeps its own moto state, so labs (even for the same account) can run side by side in one process; they
take turns talking to moto, one request at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kms_rescue import files
from kms_rescue.errors import UsageError
from kms_rescue.lab.faults import FAULT_KINDS
from kms_rescue.lab.identity import Credentials, root_principal, session_principal, user_principal
from kms_rescue.lab.scenario import Scenario, load_scenario
from kms_rescue.lab.trail import TrailEvent

if TYPE_CHECKING:
    import boto3

    from kms_rescue.lab._moto import KeyInfo
    from kms_rescue.lab.gate import Gate
    from kms_rescue.lab.runtime import LabRuntime



_loader: Any = None


def _shared_loader() -> Any:
    """One botocore data loader for every session the lab hands out: service models load once."""
    global _loader
    if _loader is None:
        import botocore.loaders  # deferred: botocore loads only when a lab hands out a session (start-up time)

        _loader = botocore.loaders.create_loader()
    return _loader


def _require_lab_extra() -> None:
    try:  # the check itself: is the lab extra installed? (so these imports cannot move to the top)
        import jsonschema  # noqa: F401
        import moto  # noqa: F401
        import werkzeug  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the lab extra is installed in development
        raise UsageError(
            f"the lab needs the 'lab' extra ({exc.name} is missing): pip install 'kms-rescue[lab]'"
        ) from None



#: The first line of every AWS config a lab writes: ``--aws-config`` replaces an existing file only when it has it.
CONFIG_MARKER = "# kms-rescue lab: AWS config written by `kms-rescue lab` (safe for a lab to replace)"


def _written_by_a_lab(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a symlink) whose first line is :data:`CONFIG_MARKER`."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, len(CONFIG_MARKER.encode("utf-8")) + 2).decode("utf-8", "replace")
    except OSError:
        return False
    finally:
        os.close(fd)
    return head.splitlines()[0] == CONFIG_MARKER if head else False


class LabAdmin:
    """Looks at and changes the lab's state without going through the gate (for tests and demos)."""

    def __init__(self, lab: Lab) -> None:
        self._lab = lab

    @property
    def _rt(self) -> LabRuntime:
        return self._lab._runtime_or_fail()

    def raw_key_policy(self, key: str, *, region: str | None = None) -> str:
        """The key policy as stored (deleted principals show as unique ids)."""
        return self.key(key, region=region).policy

    def key(self, key: str, *, region: str | None = None) -> KeyInfo:
        """The key a key id, key ARN, alias name or alias ARN names (see :meth:`Lab.key_id` for ``region``)."""
        rt = self._rt
        with rt.lock:
            key_id, key_region, key_account = self._lab.locate_key(key, region=region)
            info = rt.key(key_id, key_account, region=key_region)
            if info is None:
                raise UsageError(f"no key {key} in the lab")
            return info

    def set_key_policy(self, key: str, policy: str | Mapping[str, Any], *, region: str | None = None) -> None:
        """Replace a key policy with no checks at all (not even the lockout safety check)."""
        text = policy if isinstance(policy, str) else json.dumps(policy, indent=2)
        rt = self._rt
        with rt.lock:
            key_id, key_region, key_account = self._lab.locate_key(key, region=region)
            rt.moto.set_key_policy(key_account, key_id, text, region=key_region)

    def delete_principal(self, ref: str, account: str | None = None) -> str:
        """Delete ``role/NAME`` or ``user/NAME`` as an administrator would; returns the unique id key policies
        now show in its place."""
        kind, _, name = ref.partition("/")
        rt = self._rt
        with rt.lock:
            info = rt.moto.delete_principal(account or rt.account, kind, name.rpartition("/")[2])
            if info is None:
                raise UsageError(f"no {ref} in account {account or rt.account}")
            rt.principal_deleted(info)
            return info.unique_id

    def create_role(self, name: str, *, policies: list[Mapping[str, Any]] = (), account: str | None = None,  # type: ignore[assignment]
                    path: str = "/") -> str:
        """Create a role (trusting its account) with inline policies; returns its ARN."""
        from kms_rescue.lab.runtime import default_trust  # deferred: runtime imports moto (start-up time)

        rt = self._rt
        acct = account or rt.account
        with rt.lock:
            info = rt.moto.create_role(acct, name, path=path, trust=json.dumps(default_trust(acct)))
            for n, doc in enumerate(policies, 1):
                rt.moto.put_inline_policy(acct, "role", name, f"inline-{n}", json.dumps(doc))
            return info.arn

    def unique_id(self, ref: str, account: str | None = None) -> str | None:
        """The unique id of ``role/NAME`` or ``user/NAME`` (alive), or of a deleted one, or None."""
        kind, _, name = ref.partition("/")
        rt = self._rt
        acct = account or rt.account
        with rt.lock:
            info = rt.moto.principal(acct, kind, name.rpartition("/")[2])
            if info is not None:
                return info.unique_id
            for arn, uid in rt.deleted_ids.items():
                if arn.startswith(f"arn:aws:iam::{acct}:{kind}/") and arn.rsplit("/", 1)[1] == name:
                    return uid
        return None

    def sign_in(self, ref: str, *, session_name: str = "console", account: str | None = None) -> Credentials:
        """Credentials for ``role/NAME`` (a session called ``session_name``), ``user/NAME`` or ``root`` (the
        account's root user), as if someone signed in to the console as that principal: how a recovery uses a
        principal nobody has a profile for."""
        kind, _, name = ref.partition("/")
        rt = self._rt
        if ref == "root":
            with rt.lock:
                return rt.issue(root_principal(account or rt.account))
        with rt.lock:
            info = rt.moto.principal(account or rt.account, kind, name.rpartition("/")[2])
            if info is None:
                raise UsageError(f"no {ref} in account {account or rt.account}")
            if info.kind == "role":
                principal = session_principal(info.arn, info.unique_id, info.account, info.name, info.path,
                                              session_name, info.tags)
            else:
                principal = user_principal(info.arn, info.account, info.name, info.path, info.unique_id, info.tags)
            return rt.issue(principal)

    def identity_policies(self, profile: str) -> list[str]:
        rt = self._rt
        with rt.lock:
            return rt.identity_policies(rt.profiles[profile].principal)

    def events(self) -> list[TrailEvent]:
        """Every CloudTrail event of the lab, newest first."""
        return self._rt.events.all()

    def stats(self) -> dict[str, int]:
        """Requests served, faults injected (``fault:KIND``), denials, unrecognised credentials."""
        return dict(self._lab._gate_or_fail().stats)

    @property
    def internal_errors(self) -> list[str]:
        return list(self._lab._gate_or_fail().internal_errors)


class Lab:
    """A running lab. Use as ``with Lab(scenario) as lab:`` or call :meth:`start` and :meth:`stop`.

    ``scenario``: a built-in name, a JSON file path, a dict, or a :class:`Scenario`. ``port`` 0 picks a free port.
    ``latency_ms`` delays every request; ``fault_rate`` of requests fail with ``fault`` (``throttle``: 400
    ThrottlingException, ``5xx``: 500 KMSInternalException, ``hang``: no answer until ``hang_seconds`` pass or the
    lab stops), reproducibly for a given ``seed``. ``op_latency_ms`` delays the answers of the operations it names
    (``{"PutKeyPolicy": 3000}``: the write lands, the answer comes late). ``config_path``: where to write the AWS
    config (default: a private temporary file, removed on stop). ``clock``: the lab's time (default: the current
    UTC time), which every request's ``aws:CurrentTime`` and ``aws:EpochTime`` carry, so date conditions are
    enforced for that date.
    """

    def __init__(
        self,
        scenario: str | os.PathLike[str] | Mapping[str, Any] | Scenario,
        *,
        port: int = 0,
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        fault: str = "throttle",
        seed: int | None = None,
        config_path: str | os.PathLike[str] | None = None,
        hang_seconds: float = 900.0,
        clock: Callable[[], datetime] | None = None,
        op_latency_ms: Mapping[str, float] | None = None,
    ) -> None:
        self.scenario: Scenario = load_scenario(scenario if not isinstance(scenario, os.PathLike) else str(scenario))
        if not 0 <= port <= 65535:
            raise UsageError(f"--port must be from 0 to 65535, not {port}")
        if latency_ms < 0:
            raise UsageError("--latency-ms must not be negative")
        if not 0.0 <= fault_rate <= 1.0:
            raise UsageError(f"--fault-rate is a fraction from 0 to 1, not {fault_rate}")
        if fault not in FAULT_KINDS:
            raise UsageError(f"--fault must be one of {', '.join(FAULT_KINDS)}, not {fault!r}")
        self._port = port
        self._latency_ms = latency_ms
        self._fault_rate = fault_rate
        self._fault = fault
        self._seed = seed
        self._hang_seconds = hang_seconds
        self._clock = clock
        self._op_latency = tuple(sorted((op_latency_ms or {}).items()))
        self._config_arg = Path(config_path) if config_path is not None else None
        self._tmpdir: str | None = None
        self._config_id: tuple[int, int] | None = None  # (device, inode) of the config written
        self._runtime: LabRuntime | None = None
        self._gate: Gate | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.config_path: Path | None = None
        self.endpoint: str = ""
        self.admin = LabAdmin(self)

    # --- lifecycle -----------------------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> Lab:
        if self.running:
            return self
        _require_lab_extra()
        try:
            self._start()
        except BaseException:
            self._teardown()
            raise
        return self

    def _start(self) -> None:
        # Deferred for start-up time: these import moto and werkzeug (the lab extra), which `import kms_rescue.lab`
        # (scenarios, `kms-rescue lab --list`) does not need.
        from werkzeug.serving import WSGIRequestHandler, make_server

        from kms_rescue.lab.gate import Gate, GateOptions
        from kms_rescue.lab.runtime import LabRuntime

        self._stop.clear()
        runtime = LabRuntime(self.scenario, clock=self._clock) if self._clock else LabRuntime(self.scenario)
        runtime.build()
        self._runtime = runtime
        self._gate = Gate(
            runtime,
            GateOptions(
                latency_ms=self._latency_ms, fault_rate=self._fault_rate, fault=self._fault, seed=self._seed,
                hang_seconds=self._hang_seconds, op_latency_ms=self._op_latency,
            ),
            self._stop,
        )

        class QuietHandler(WSGIRequestHandler):
            # HTTP/1.0: one request per connection, so no idle keep-alive thread outlives a request.
            protocol_version = "HTTP/1.0"
            timeout = 10

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                pass

            def log(self, type: str, message: str, *args: Any) -> None:
                pass

        # Bind the socket here: werkzeug's own bind prints to stderr and exits the process when the port is taken.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self._port))
            sock.listen(128)
            self._server = make_server("127.0.0.1", self._port, self._gate, threaded=True,
                                       request_handler=QuietHandler, fd=sock.fileno())
        except OSError as exc:
            raise UsageError(f"cannot listen on 127.0.0.1:{self._port}: {exc.strerror}") from None
        finally:
            sock.close()  # the server works on its own duplicate of the descriptor
        port = int(self._server.port)
        self.endpoint = f"http://127.0.0.1:{port}"
        self._gate.hosts = frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})
        self.config_path = self._write_config()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"kms-rescue-lab:{port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving: unblock hanging requests, wait for every request thread, free the port, empty moto's
        state for the lab's accounts. Safe to call twice."""
        self._teardown()

    def _teardown(self) -> None:
        self._stop.set()
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
            self._server.server_close()  # joins the request threads (socketserver's block_on_close)
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._runtime is not None:
            with self._runtime.lock:
                self._runtime.moto.reset()
        self._remove_config()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # --- what tests and users need -------------------------------------------------------------------------

    def _runtime_or_fail(self) -> LabRuntime:
        if self._runtime is None:
            raise UsageError("the lab is not running: use it inside `with Lab(...) as lab:`")
        return self._runtime

    def _gate_or_fail(self) -> Gate:
        if self._gate is None:
            raise UsageError("the lab is not running: use it inside `with Lab(...) as lab:`")
        return self._gate

    @property
    def account(self) -> str:
        return self.scenario.account

    @property
    def region(self) -> str:
        """The scenario's Region: the one the profiles use."""
        return self.scenario.region

    @property
    def regions(self) -> tuple[str, ...]:
        """Every Region the lab serves (EC2's enabled Regions), the scenario's own first."""
        return self.scenario.regions

    @property
    def identities(self) -> dict[str, str]:
        """Profile -> the caller ARN its credentials act as."""
        return {i.profile: i.caller_arn for i in self.scenario.identities}

    @property
    def profiles(self) -> list[str]:
        return [i.profile for i in self.scenario.identities]

    def credentials(self, profile: str) -> Credentials:
        rt = self._runtime_or_fail()
        if profile not in rt.profiles:
            self.scenario.identity(profile)  # raises with the list of profiles
        return rt.profiles[profile]

    def locate(self, id_or_alias: str, *, region: str | None = None) -> tuple[str, str]:
        """The key id and Region for a key id, key ARN, alias name or alias ARN.

        An ARN names its Region; a key id is found in whichever Region holds it; an alias name is looked up in
        ``region`` when given, else in the scenario's Region, else in the one other Region that has it.
        """
        key_id, key_region, _ = self.locate_key(id_or_alias, region=region)
        return key_id, key_region

    def locate_key(self, id_or_alias: str, *, region: str | None = None, account: str | None = None
                   ) -> tuple[str, str, str]:
        """The key id, Region and account for a key id, key ARN, alias name or alias ARN (see :meth:`locate`).

        A key ARN or alias ARN names its account; a key id is found in whichever account holds it; an alias name
        is looked up in ``account`` (default: the scenario's).
        """
        ref = id_or_alias
        if ref.startswith("arn:"):
            parts = ref.split(":", 5)
            if len(parts) == 6:
                region, account = parts[3], parts[4] or account
            ref = parts[-1]
            ref = ref[len("key/"):] if ref.startswith("key/") else ref
        if not ref.startswith("alias/"):
            spec = self.scenario.key(ref)
            if spec is not None and region in (None, spec.region) and account in (None, spec.account):
                return ref, spec.region, spec.account
            if self._runtime is not None:  # a key created while the lab runs
                with self._runtime.lock:
                    info = self._runtime.find_key(ref, account, region=region)
                if info is not None:
                    return ref, info.region, info.account
            return ref, region or self.region, account or self.account
        rt = self._runtime_or_fail()
        acct = account or self.account
        with rt.lock:
            candidates = [region] if region else list(self.regions)
            found = [(k, r) for r in candidates if (k := rt.moto.key_for_alias(acct, ref, region=r))]
        if not found:
            raise UsageError(f"no alias {ref} in the lab" + (f" in {region}" if region else ""))
        if region is None and found[0][1] != self.region and len(found) > 1:
            raise UsageError(f"alias {ref} exists in {', '.join(r for _, r in found)}: name the region")
        return found[0][0], found[0][1], acct

    def key_id(self, id_or_alias: str, *, region: str | None = None) -> str:
        """The key id for a key id, key ARN, alias name or alias ARN of the scenario's account."""
        return self.locate(id_or_alias, region=region)[0]

    def key_arn(self, id_or_alias: str, *, region: str | None = None, account: str | None = None) -> str:
        """The key ARN (with the key's Region and account) for a key id, key ARN, alias name or alias ARN."""
        key_id, key_region, key_account = self.locate_key(id_or_alias, region=region, account=account)
        return f"arn:aws:kms:{key_region}:{key_account}:key/{key_id}"

    def session(self, profile: str) -> boto3.Session:
        """A boto3 session for ``profile`` reading the lab's AWS config file (so ``endpoint_url`` applies)."""
        import boto3  # deferred: boto3 loads only when a lab hands out a session (start-up time)
        import botocore.session

        if self.config_path is None:
            raise UsageError("the lab is not running: use it inside `with Lab(...) as lab:`")
        self.credentials(profile)
        core = botocore.session.Session()
        core.register_component("data_loader", _shared_loader())
        core.set_config_variable("config_file", str(self.config_path))
        core.set_config_variable("credentials_file", os.devnull)
        return boto3.Session(botocore_session=core, profile_name=profile)

    def client(self, profile: str, service: str, **kwargs: Any) -> Any:
        """``lab.session(profile).client(service, **kwargs)``."""
        return self.session(profile).client(service, **kwargs)  # type: ignore[call-overload]

    def client_for(self, creds: Credentials, service: str, **kwargs: Any) -> Any:
        """A boto3 client for credentials the lab issued (e.g. :meth:`LabAdmin.sign_in`), pointed at the lab."""
        return self._client_with_keys(creds.access_key_id, creds.secret_access_key, creds.session_token, service,
                                      **kwargs)

    def assumed_client(self, credentials: Mapping[str, Any], service: str, **kwargs: Any) -> Any:
        """A boto3 client for the ``Credentials`` of an STS AssumeRole answer from the lab (``AccessKeyId``,
        ``SecretAccessKey``, ``SessionToken``), pointed at the lab: how a caller enters another account."""
        return self._client_with_keys(str(credentials["AccessKeyId"]), str(credentials["SecretAccessKey"]),
                                      credentials.get("SessionToken"), service, **kwargs)

    def _client_with_keys(self, access_key_id: str, secret_access_key: str, session_token: str | None,
                          service: str, **kwargs: Any) -> Any:
        import boto3  # deferred: see session()
        import botocore.session

        core = botocore.session.Session()
        core.register_component("data_loader", _shared_loader())
        # Only the lab's own config (its [default] section), nothing from the user's AWS configuration.
        for var, value in (("config_file", str(self.config_path)), ("credentials_file", os.devnull),
                           ("profile", "default")):
            core.set_config_variable(var, value)
        session = boto3.Session(
            botocore_session=core, aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            aws_session_token=session_token, region_name=kwargs.pop("region_name", self.region),
        )
        return session.client(service, endpoint_url=self.endpoint, **kwargs)  # type: ignore[call-overload]

    # --- the AWS config file -------------------------------------------------------------------------------

    def config_text(self) -> str:
        rt = self._runtime_or_fail()
        lines = [
            CONFIG_MARKER,
            f"# AWS config for the kms-rescue lab: scenario {self.scenario.name}, served at {self.endpoint}.",
            "# The lab removes this file when it stops.",
            "# Lab-issued credentials: they work only against this lab.",
            "[default]",
            f"region = {self.region}",
            f"endpoint_url = {self.endpoint}",
            "",
        ]
        for ident in self.scenario.identities:
            creds = rt.profiles[ident.profile]
            lines += [
                f"# {ident.caller_arn}",
                f"[profile {ident.profile}]",
                f"aws_access_key_id = {creds.access_key_id}",
                f"aws_secret_access_key = {creds.secret_access_key}",
            ]
            if creds.session_token:
                lines.append(f"aws_session_token = {creds.session_token}")
            lines += [f"region = {self.region}", f"endpoint_url = {self.endpoint}", ""]
        return "\n".join(lines)

    def _write_config(self) -> Path:
        """Write the AWS config (mode 0600, symlinks not followed). An existing ``config_path`` is replaced only
        when it is a config a lab wrote (its first line is :data:`CONFIG_MARKER`): never a user's own."""
        if self._config_arg is not None:
            path = Path(os.path.abspath(self._config_arg.expanduser()))
        else:
            self._tmpdir = tempfile.mkdtemp(prefix="kms-rescue-lab-")
            path = Path(self._tmpdir) / "aws-config"
        data = self.config_text().encode("utf-8")
        try:
            if os.path.lexists(path):
                if not _written_by_a_lab(path):
                    raise UsageError(
                        f"--aws-config {path}: the file exists and is not a config the lab wrote: the lab never "
                        "replaces your own AWS config (choose a new file name, e.g. lab.ini)"
                    )
                files.replace(path, data)
            else:
                files.create_new(path, data)
            st = os.lstat(path)
        except FileExistsError:
            raise UsageError(f"--aws-config {path}: the file appeared while the lab started; not replaced") from None
        except OSError as exc:
            raise UsageError(f"cannot write the AWS config {path}: {exc.strerror or exc}") from None
        self._config_id = (st.st_dev, st.st_ino)
        return path

    def _remove_config(self) -> None:
        """Remove the AWS config this lab wrote, if it is still the file written (its profiles point at a port
        that no longer answers)."""
        path, written = self.config_path, self._config_id
        self._config_id = None
        if path is None or written is None or self._tmpdir is not None:
            return
        try:
            st = os.lstat(path)
            if (st.st_dev, st.st_ino) == written and _written_by_a_lab(path):
                os.unlink(path)
        except OSError:
            pass

"""``kms-rescue KEY`` (also ``kms-rescue rescue KEY``): the interactive rescue session.

It walks the recovery runbook with the person who just hit AccessDenied on their own key:

1. confirm the key (ask for it when it is missing);
2. choose the identities to try (every profile ticked; add roles to assume);
3. probe them all, with a progress bar, and show the identities × calls table;
4. say in plain words what decides the verdict (the statements and principals);
5. then, by verdict:
   * manageable: offer the fix (every statement kept, AWS's default account statement added, optionally a named
     administrator role), show the diff and why each line is there, and on confirmation back up, check, apply
     with KMS's lockout safety check on, verify, and print the command that restores the backup;
   * recoverable: the concrete next step, and an offer to run again with the identity that can manage the key;
   * locked out: the escalation path (cloud team / AWS Support) and the drafted ticket;
   * undetermined: what CloudTrail recovered, then the escalation.

The session is interactive only when stdin and stdout are terminals and ``--no-input`` is not given; otherwise it
prints the report (as ``kms-rescue report`` does) and exits with the report's code. Ctrl-C anywhere exits 130: the
policy write cannot be cut in half (Ctrl-C is held back for that one call), and a ticket being drafted is saved.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kms_rescue.cli._complete import complete_profile, complete_region
from kms_rescue.cli._gc import collector_paused
from kms_rescue.cli._progress import ProbeProgress
from kms_rescue.cli.options import positive_seconds
from kms_rescue.cli.prompter import Choice, Prompter
from kms_rescue.cli.report import DEADLINE_HELP, DEFAULT_DEADLINE, check_deadline
from kms_rescue.errors import KmsRescueError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from kms_rescue.aws.keyref import KeyRef
    from kms_rescue.aws.results import IdentitySpec, Investigation
    from kms_rescue.report import IdentityReport, Report

EXIT_INTERRUPTED = 130

EPILOG = (
    "Examples: kms-rescue arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab · "
    "kms-rescue rescue alias/payments --region us-east-1 --role-arn arn:aws:iam::111122223333:role/KeyAdmin · "
    "kms-rescue demo (try it on a local lab first). Without a terminal (or with --no-input) it prints the report "
    "and exits with its code: 0 manageable, 3 recoverable, 4 locked out, 5 undetermined, 6 not found."
)


@dataclass
class SessionSettings:
    """What the command line gives the session."""

    region: str | None = None
    profiles: Sequence[str] = ()
    role_arns: Sequence[str] = ()
    base_profile: str | None = None
    timeout: float = 10.0
    deadline: float | None = DEFAULT_DEADLINE  # the probe stage's overall deadline (seconds)
    trail_bucket: str | None = None
    history: bool = True
    backup_dir: str | None = None  # default: the current directory
    ticket_dir: str | None = None  # default: the current directory
    to: str | None = None  # the escalation address (else env / config)
    environ: Mapping[str, str] | None = None  # None: os.environ
    max_reruns: int = 3
    extra_specs: list[Any] = field(default_factory=list)  # identities added during the session


# --- Ctrl-C ------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def sigint_held() -> Iterator[list[int]]:
    """Hold Ctrl-C back while the body runs (the one PutKeyPolicy call and its verification must not be cut in
    half). The list it yields is non-empty when Ctrl-C was pressed meanwhile; the caller raises afterwards."""
    pressed: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return

    def remember(signum: int, _frame: Any) -> None:
        pressed.append(signum)

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


# --- output helpers ----------------------------------------------------------------------------------------------


def _consoles(width: int | None = None) -> tuple[Console, Console]:
    from rich.console import Console

    no_color = "NO_COLOR" in os.environ
    return (Console(file=sys.stdout, width=width, highlight=False, no_color=no_color, emoji=False),
            Console(file=sys.stderr, width=width, highlight=False, no_color=no_color, emoji=False))


OUTCOME_STYLES = {"ok": "green", "yes": "bold green", "access_denied": "red", "no": "red", "-": "dim"}


def calls_table(report: Report) -> Any:
    """The identities × calls table (rich)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from kms_rescue.render.report_view import grid

    headings, rows = grid(report)
    table = Table(title="Identities and calls", title_justify="left", box=box.SIMPLE_HEAD)
    for col, h in enumerate(headings):
        if h == "Caller":
            table.add_column(h, overflow="fold")
            continue
        if h == "Identity":
            table.add_column(h, overflow="fold", min_width=min(24, max([len(h), *(len(r.name) for r in rows)])))
            continue
        cells = [r.status if col == 2 else r.manage if col == len(headings) - 1 else r.cells[col - 3] for r in rows]
        table.add_column(h, no_wrap=True, min_width=max([len(h), *(len(c) for c in cells)]))

    def cell(value: str) -> Text:
        return Text(value, style=OUTCOME_STYLES.get(value.split(" ")[0], "yellow"))

    for row in rows:
        table.add_row(row.name, row.arn, cell(row.status), *(cell(c) for c in row.cells), cell(row.manage))
    return table


def explain_verdict(report: Report) -> list[str]:
    """The verdict in plain words, naming the statements and principals that decide it."""
    lines: list[str] = [report.summary]
    key = report.key
    managers = report.managers
    paths = report.management_paths
    if report.policy.source == "cloudtrail":
        lines.append(f"Nobody could read the live policy; this is the last one CloudTrail recorded "
                     f"({report.policy.note}).")
    if report.intentional_lock:
        lines.append("The key policy only lets Nitro Enclaves with a matching attestation use the key: it is locked "
                     "on purpose, not by accident. kms-rescue will not change it.")
        return lines
    if report.verdict == "manageable":
        for m in managers:
            lines.append(f"{m.name} ({m.arn}) can call kms:PutKeyPolicy: {m.why}.")
    elif report.verdict == "not_found":
        loc = report.location
        if loc is not None and loc.searched:
            lines.append(f"Also searched {len(loc.searched)} other Regions with {loc.searched_by}"
                         + (f"; found in {', '.join(f.region for f in loc.found)}." if loc.found else
                            "; not found there either."))
        return lines
    elif report.verdict in ("recoverable", "locked_out"):
        for ident in report.identities:
            if ident.can_manage is False and ident.why:
                lines.append(f"{ident.name} cannot: {ident.why}.")
            elif ident.can_manage is None and ident.why:
                lines.append(f"{ident.name}: {ident.why}.")
    for p in paths:
        if p.can_manage:
            lines.append(f"Statement {p.statement} lets {p.principal} manage the key: {p.why}.")
        elif p.kind == "orphaned_unique_id":
            lines.append(f"Statement {p.statement} names {p.principal}, a principal that was deleted: a new one "
                         "with the same name does not match it.")
        elif p.blocked_by:
            lines.append(f"Statement {p.statement} would let {p.principal} in, but Deny {', '.join(p.blocked_by)} "
                         "always applies.")
        elif p.kind == "other_account":
            lines.append(f"Statement {p.statement} names {p.principal}: {p.why}.")
        elif not p.satisfiable:
            lines.append(f"Statement {p.statement} ({p.principal}) can never apply: {p.why}.")
    if report.verdict == "locked_out":
        lines.append(f"No principal of account {key.account} can call kms:PutKeyPolicy on this key.")
    return lines


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the session -------------------------------------------------------------------------------------------------


class RescueSession:
    """One interactive session. ``prompter`` asks; ``out`` prints the session (stdout), ``err`` the progress."""

    def __init__(self, prompter: Prompter, out: Console, err: Console, settings: SessionSettings | None = None,
                 *, progress_bar: bool = True) -> None:
        self.prompter = prompter
        self.out = out
        self.err = err
        self.settings = settings or SessionSettings()
        self.progress_bar = progress_bar
        self.investigation: Investigation | None = None
        self.report: Report | None = None
        self.specs: list[IdentitySpec] = []
        self.saved_ticket: Path | None = None
        self.applied: Any = None
        self.redactor: Any = None

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self.settings.environ is None else self.settings.environ

    def say(self, text: str = "", style: str | None = None) -> None:
        from rich.text import Text

        self.out.print(Text(text, style=style or ""))

    def heading(self, text: str) -> None:
        from rich.rule import Rule

        self.out.print(Rule(text, align="left"))

    # -- 1. the key ---------------------------------------------------------------------------------------------

    def _default_region(self) -> str | None:
        """--region, else the AWS CLI's Region chain (AWS_REGION, AWS_DEFAULT_REGION, the profile's region)."""
        from kms_rescue.aws.conventions import choose_region

        return choose_region(self.settings.region, profiles=self.settings.profiles, environ=self.environ).region

    def _parse(self, value: str) -> KeyRef:
        from kms_rescue.aws.keyref import parse_key_ref

        return parse_key_ref(value, self._region_for(value))

    def _region_for(self, value: str) -> str | None:
        return None if value.strip().startswith("arn:") else self._default_region()

    def _validate_key(self, value: str) -> str | None:
        if not value.strip():
            return "enter the key's ARN, an alias ARN, or a key id / alias/NAME"
        try:
            self._parse(value)
        except UsageError as exc:
            return str(exc)
        return None

    def ask_key(self, given: str | None) -> KeyRef:
        from kms_rescue.aws.keyref import parse_key_ref
        from kms_rescue.policy.partitions import is_region_code

        value = given
        while True:
            if value is None:
                value = self.prompter.text(
                    "Which KMS key? (key ARN or alias ARN; a key id or alias/NAME needs the Region)",
                    validate=self._validate_key_or_needs_region,
                )
            value = value.strip()
            region = self._region_for(value)
            if region is None and not value.startswith("arn:"):
                region = self.prompter.text(
                    "In which Region is the key?",
                    validate=lambda v: None if is_region_code(v.strip()) else "a Region code such as us-east-1",
                ).strip()
            ref = parse_key_ref(value, region)
            where = f" in {ref.region}" if not value.startswith("arn:") else ""
            if self.prompter.confirm(f"Investigate {ref.raw}{where}?", default=True):
                return ref
            value = None

    def _validate_key_or_needs_region(self, value: str) -> str | None:
        problem = self._validate_key(value)
        if problem and "needs --region" in problem and self._default_region() is None:
            return None  # we ask for the Region next
        return problem

    # -- 2. identities ------------------------------------------------------------------------------------------

    def choose_identities(self) -> list[IdentitySpec]:
        from kms_rescue.aws.results import IdentitySpec
        from kms_rescue.aws.sessions import discover_identities, role_name

        s = self.settings
        specs = discover_identities(s.profiles, s.role_arns, s.base_profile, environ=self.environ)
        choices = [Choice(f"{sp.name} ({sp.kind}{', ' + _short(sp.role_arn) if sp.role_arn else ''})", sp.name,
                          checked=True) for sp in specs]
        while True:
            picked = self.prompter.checkbox("Which identities should I try? (all are ticked)", choices)
            if picked:
                break
            self.say("Pick at least one identity (space ticks, enter confirms).", "yellow")
        chosen = [sp for sp in specs if sp.name in picked]

        def check_role(value: str) -> str | None:
            if not value.strip():
                return None
            try:
                role_name(value.strip())
            except UsageError as exc:
                return str(exc)
            return None

        while True:
            arn = self.prompter.text("Add a role to assume? (role ARN; leave empty to start)",
                                     validate=check_role).strip()
            if not arn:
                break
            bases = [sp for sp in chosen if sp.source != "assume_role"]
            if not bases:
                self.say("No identity to assume it from: tick a profile first.", "yellow")
                continue
            base = bases[0]
            if len(bases) > 1:
                name = self.prompter.select(f"Assume {role_name(arn)} from which identity?",
                                            [Choice(b.name, b.name) for b in bases], default=bases[0].name)
                base = next(b for b in bases if b.name == name)
            chosen.append(IdentitySpec(name=f"{role_name(arn)}@{base.name}", source="assume_role",
                                       profile=base.profile, role_arn=arn, base=base.name, kind="assume_role"))
        return chosen

    def unlock_mfa(self, specs: Sequence[IdentitySpec], region: str | None = None) -> None:
        """Role profiles that need an MFA code: ask once each, here (never from a probe thread), and let botocore
        cache the role's credentials where the AWS CLI keeps them, so the probes reuse them."""
        from kms_rescue.aws.sessions import SessionOptions, open_session

        for spec in specs:
            if not spec.mfa_serial or spec.source != "profile":
                continue
            def ask(prompt: str, name: str = spec.name) -> str:
                return self.prompter.secret(f"MFA code for {name} ({prompt.strip().rstrip(':')})")

            options = SessionOptions(timeout=max(self.settings.timeout, 30.0), write_cli_cache=True,
                                     mfa_prompter=ask)
            try:
                open_session(spec, options, environ=self.environ, region=region)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # the probe records the outcome; say it here in one line
                self.say(f"{spec.name}: the MFA code did not work ({type(exc).__name__}); it will show as needs_mfa",
                         "yellow")

    # -- 3. probe -----------------------------------------------------------------------------------------------

    def investigate(self, ref: KeyRef, specs: Sequence[IdentitySpec]) -> Report:
        from kms_rescue.aws.investigate import InvestigateOptions, investigate
        from kms_rescue.report import build_report

        s = self.settings
        options = InvestigateOptions(region=ref.region, timeout=s.timeout, history=s.history,
                                     trail_bucket=s.trail_bucket, environ=s.environ, deadline=s.deadline)
        with collector_paused():
            if self.progress_bar:
                with ProbeProgress(self.err) as bar:
                    inv = investigate(ref, options, identities=list(specs), progress=bar)
            else:
                inv = investigate(ref, options, identities=list(specs))
        self.redactor = options.redactor
        self.investigation = inv
        self.report = build_report(inv)
        return self.report

    def show(self, report: Report) -> None:
        from kms_rescue.render.report_view import state_lines  # deferred with the other renderers: start-up time
        from kms_rescue.render.text import URGENCY_STYLES

        for notice, line in zip(report.key_state, state_lines(report), strict=True):
            self.say(line, URGENCY_STYLES[notice.urgency])  # the key's state comes before anything else
        if report.key_state:
            self.say()
        self.out.print(calls_table(report))
        for ident in report.identities:
            if ident.hint:
                self.say(f"  {ident.name}: {ident.hint}", "dim")
        self.heading(f"Verdict: {report.verdict.replace('_', ' ').upper()}")
        for line in explain_verdict(report):
            self.say(line)
        self.say()

    # -- the whole session ----------------------------------------------------------------------------------------

    def run(self, key: str | None) -> int:
        ref = self.ask_key(key)
        self.specs = self.choose_identities()
        self.unlock_mfa(self.specs, ref.region)
        reruns = 0
        while True:
            report = self.investigate(ref, self.specs)
            self.show(report)
            if report.intentional_lock:
                self.say("Nothing to fix: the key is locked to Nitro Enclaves attestation on purpose. If it must "
                         "change, its owners decide (and only AWS Support can help).", "bold")
                return report.exit_code
            if report.verdict == "not_found":
                for step in report.next_steps:
                    self.say(step.detail, "bold")
                    if step.command:
                        self.say(f"  $ {step.command}")
                return report.exit_code
            if report.verdict == "manageable":
                return self.offer_fix(report)
            if report.verdict == "recoverable":
                added = self.recoverable(report)
                if added is not None and reruns < self.settings.max_reruns:
                    reruns += 1
                    self.specs.append(added)
                    self.say(f"Running again with {added.name} …", "bold")
                    continue
                return report.exit_code
            if report.verdict == "undetermined":
                self.show_history(report)
            return self.escalate(report)

    # -- manageable: the fix ----------------------------------------------------------------------------------------

    def _probe_for(self, name: str) -> Any:
        assert self.investigation is not None
        return next(p for p in self.investigation.identities if p.spec.name == name)

    def offer_fix(self, report: Report) -> int:
        from kms_rescue.plan import propose_fix, validate_admin_role

        managers = list(report.managers)
        key_arn = report.key.arn
        assert key_arn is not None and report.key.account is not None
        if report.policy.document is None:
            self.say("The policy could not be read, so no fix can be planned from it.", "yellow")
            return report.exit_code
        applier = managers[0]
        if len(managers) > 1:
            name = self.prompter.select("Which identity should apply the fix?",
                                        [Choice(f"{m.name} ({m.arn})", m.name) for m in managers],
                                        default=managers[0].name)
            applier = next(m for m in managers if m.name == name)
        if not self.prompter.confirm(
                f"{applier.name} can repair the key policy. Plan a fix that keeps every statement and adds AWS's "
                "default account statement, so the key cannot be lost again?", default=True):
            self.say("No change made.")
            return report.exit_code

        admin: str | None = None
        suggestion = self._suggest_admin(report, applier)
        if self.prompter.confirm("Also name a key administrator role (least-privilege admin actions)?",
                                 default=False):
            account = report.key.account
            partition = key_arn.split(":")[1]

            def check(value: str) -> str | None:
                try:
                    validate_admin_role(value, account, partition)
                except UsageError as exc:
                    return str(exc)
                return None

            admin = self.prompter.text("Administrator role ARN", default=suggestion or "", validate=check).strip()
        plan = propose_fix(report.policy.document, key_arn=key_arn, admin_role_arn=admin)
        if not plan.changed:
            self.say("The policy already has AWS's default account statement: nothing to add.", "green")
            return report.exit_code
        self.show_diff(plan)
        if not self.prompter.confirm(
                f"Apply this policy to {report.key.id} as {applier.name}? (the current policy is backed up first)",
                default=False):
            self.say("No change made. The proposed policy above is yours to apply later.")
            return report.exit_code
        return self.apply(report, plan, applier)

    def _suggest_admin(self, report: Report, applier: IdentityReport) -> str | None:
        from kms_rescue.policy.principals import parse_caller

        if applier.role_arn and ":role/" in applier.role_arn:
            return applier.role_arn
        if applier.arn:
            caller = parse_caller(applier.arn)
            if caller.kind == "assumed_role" and caller.role_arn:
                return caller.role_arn
        return None

    def show_diff(self, plan: Any) -> None:
        from rich.text import Text

        self.heading("Proposed key policy (diff)")
        for line in plan.diff:
            style = "green" if line.added else "red" if line.removed else "cyan" if line.text.startswith("@@") \
                else ""
            text = Text(line.text, style=style)
            if line.reason:
                text.append(f"    # {line.reason}", style="dim")
            self.out.print(text, soft_wrap=True)
        for note in plan.notes:
            self.say(f"note: {note}", "yellow")
        self.say()

    def apply(self, report: Report, plan: Any, applier: IdentityReport) -> int:
        from kms_rescue.aws.apply import ApplyError, FixRefused, applier_for, apply_fix, kms_client_for

        probe = self._probe_for(applier.name)
        pols = probe.identity_policies
        docs = [d.document for d in pols.documents] if pols is not None and pols.complete else None
        assert applier.arn is not None
        backup_dir = self.settings.backup_dir or os.getcwd()
        try:
            kms, _arn = kms_client_for(probe.spec, report.key.region, timeout=self.settings.timeout,
                                       environ=self.settings.environ)
            who = applier_for(probe.spec, applier.arn, docs, environ=self.environ, principal_arn=probe.role_arn)
            with sigint_held() as pressed:
                try:
                    result = apply_fix(plan, kms, who, backup_dir=backup_dir,
                                       before_write=lambda path: self.say(
                                           f"Backed up the current policy to {path} (mode 0600). Checks passed; "
                                           "calling kms:PutKeyPolicy with the lockout safety check on …"))
                except FixRefused as exc:
                    self.say(f"Refused: nothing was written to the key. {str(exc).removeprefix('refused: ')}",
                             "bold red")
                    for c in exc.checks:
                        mark = "keeps" if c.allowed else "would LOSE"
                        self.say(f"  {c.role} {c.principal} {mark} kms:PutKeyPolicy: {c.detail}")
                    if exc.backup_path:
                        self.say(f"The current policy is saved in {exc.backup_path}.")
                    return report.exit_code
        except ApplyError as exc:
            self.say(f"Not applied: {exc}", "bold red")
            if exc.hint:
                self.say(exc.hint)
            return 1
        self.applied = result
        self.say("Applied." if result.verified else "Applied, but NOT verified:", "bold green" if result.verified
                 else "bold yellow")
        for note in result.verification:
            self.say(f"  {note}")
        self.say(f"Backup: {result.backup_path}")
        self.say("To undo it, put the backup back:", "bold")
        self.say(f"  {result.restore_command}", "cyan")
        if pressed:
            raise KeyboardInterrupt
        return 0 if result.verified else 1

    # -- recoverable --------------------------------------------------------------------------------------------

    def recoverable(self, report: Report) -> IdentitySpec | None:
        """Show the next steps; return an identity to add for another run (or None to stop)."""
        from kms_rescue.aws.results import IdentitySpec
        from kms_rescue.aws.sessions import role_name

        self.heading("What to do next")
        for n, step in enumerate(report.next_steps, 1):
            self.say(f"{n}. {step.detail}")
            if step.command:
                self.say(f"   $ {step.command}", "cyan")
            if step.policy is not None:
                self.say("   " + json.dumps(step.policy, indent=2).replace("\n", "\n   "), "cyan")
        roles = list(dict.fromkeys(
            s.principal for s in report.next_steps
            if s.action == "assume_role" and s.principal and ":role/" in s.principal and "*" not in s.principal
        ))
        tried = {sp.role_arn for sp in self.specs if sp.source == "assume_role"}
        roles = [r for r in roles if r not in tried]
        bases = [sp for sp in self.specs if sp.source != "assume_role"
                 and (ident := report.identity(sp.name)) is not None and ident.status == "ok"]
        if not roles or not bases:
            self.say("When you have credentials for one of these, run the session again with them "
                     "(e.g. kms-rescue KEY --role-arn ROLE, or with the profile).")
            return None
        choices = [Choice(f"assume {r}", r) for r in roles] + [Choice("no, stop here", "")]
        role = self.prompter.select("Run again, assuming the role that can manage the key?", choices,
                                    default=roles[0])
        if not role:
            return None
        base = bases[0]
        if len(bases) > 1:
            name = self.prompter.select(f"Assume {role_name(role)} from which identity?",
                                        [Choice(b.name, b.name) for b in bases], default=bases[0].name)
            base = next(b for b in bases if b.name == name)
        return IdentitySpec(name=f"{role_name(role)}@{base.name}", source="assume_role", profile=base.profile,
                            role_arn=role, base=base.name, kind="assume_role")

    # -- undetermined: history ------------------------------------------------------------------------------------

    def show_history(self, report: Report) -> None:
        h = report.history
        self.heading("What CloudTrail recovered")
        if not h.searched:
            self.say("CloudTrail was not searched: no identity of the key's account had working credentials.")
        elif h.outcome not in (None, "ok"):
            self.say(f"CloudTrail could not be read ({h.error_code or h.outcome}).")
        elif not h.events:
            self.say("No management event for this key in the last 90 days.")
        for ev in h.events:
            result = "ok" if ev.succeeded else f"failed: {ev.error_code}"
            self.say(f"  {ev.time}  {ev.name}  by {ev.actor or 'unknown'}  ({result})")
        for fa in h.former_admins:
            self.say(f"  former administrator: {fa.principal} ({fa.evidence})")
        self.say("For history older than 90 days, query the trail with Athena (kms-rescue report KEY --format json "
                 "prints the query under history.athena_query).", "dim")
        self.say()

    # -- locked out / undetermined: escalate ------------------------------------------------------------------------

    def escalate(self, report: Report) -> int:
        from kms_rescue.cli.ticket import escalation_address, save_draft, write_ticket
        from kms_rescue.render.ticket import TicketFormat, build_ticket, default_filename, render, valid_address

        self.heading("Escalate")
        self.say(f"Nobody you can use manages this key. The runbook's next step: contact your cloud team or AWS "
                 f"Support with the key ARN ({report.key.arn or report.key.input}). AWS verifies the request with "
                 "a call to the account's phone number, works with the root user, and may ask for a recovery IAM "
                 "user to exist.")
        address = escalation_address(self.settings.to, self.environ)
        ticket = build_ticket(report, to=address)
        folder = Path(self.settings.ticket_dir or os.getcwd())
        draft_path = folder / default_filename(ticket, TicketFormat.markdown)
        try:
            if not self.prompter.confirm("Draft the escalation ticket now?", default=True):
                self.say(f"Later: kms-rescue ticket {report.key.arn or report.key.input}")
                return report.exit_code
            fmt = TicketFormat(self.prompter.select(
                "Which format?",
                [Choice("markdown (for a ticket system or chat)", "markdown"),
                 Choice("email (plain text with To:/Subject:)", "email"),
                 Choice("eml (opens in your mail client as a draft)", "eml")],
                default="markdown"))
            if fmt is not TicketFormat.markdown:
                to = self.prompter.text(
                    "Send it to (your cloud team's or escalation address)", default=address or "",
                    validate=lambda v: None if not v.strip() or valid_address(v) else "name@example.com").strip()
                ticket = build_ticket(report, to=to or None)
            path = Path(self.prompter.text("Save the ticket to", default=str(folder / default_filename(ticket, fmt)))
                        .strip()).expanduser()
            self.saved_ticket = save_draft(self._scrub(render(ticket, fmt)), path)  # a taken name gets -2, -3, …
            self.say(f"Saved the ticket to {self.saved_ticket}", "bold green")
            if self.prompter.confirm("Open an AWS Support case through the Support API now? (needs a Business "
                                     "support plan or higher)", default=False):
                from kms_rescue.cli.ticket import open_support_case

                assert self.investigation is not None
                case = open_support_case(report, self.investigation, ticket, say=lambda m: self.say(m, "dim"))
                if case.opened:
                    self.say(f"AWS Support case opened: {case.case_id}", "bold green")
                else:
                    self.say(f"No case was opened: {case.fallback_reason}. Open it in the console with the ticket: "
                             f"{case.console_url}", "yellow")
                ticket = build_ticket(report, to=ticket.to, case=case)
                write_ticket(self._scrub(render(ticket, fmt)), self.saved_ticket, force=True)  # the file just saved
        except KeyboardInterrupt:
            self.saved_ticket = save_draft(self._scrub(ticket.body), draft_path)
            self.err.print(f"Interrupted: the ticket draft is saved in {self.saved_ticket}")
            raise
        return report.exit_code

    def _scrub(self, payload: str | bytes) -> str | bytes:
        if isinstance(payload, str) and self.redactor is not None:
            return str(self.redactor.scrub_known(payload))
        return payload


# --- entry points ------------------------------------------------------------------------------------------------


def is_interactive(no_input: bool, stdin: Any = None, stdout: Any = None) -> bool:
    """Interactive only with a terminal on both stdin and stdout, and without --no-input."""
    if no_input:
        return False
    for stream in (stdin or sys.stdin, stdout or sys.stdout):
        try:
            if not stream.isatty():
                return False
        except (AttributeError, ValueError):
            return False
    return True


def run_rescue(
    key: str | None,
    settings: SessionSettings,
    *,
    interactive: bool,
    prompter: Prompter | None = None,
    consoles: tuple[Console, Console] | None = None,
    progress_bar: bool = True,
    on_session: Callable[[RescueSession], None] | None = None,
) -> int:
    """The command's body: the session when ``interactive``, else the report. Returns the exit code."""
    if not interactive:
        if not key:
            raise UsageError("no key given: pass KEY (without a terminal, or with --no-input, nothing is asked)")
        from kms_rescue.cli.report import run_report

        return run_report(key, timeout=settings.timeout, deadline=settings.deadline,
                          profiles=list(settings.profiles),
                          role_arns=list(settings.role_arns), base_profile=settings.base_profile,
                          region=settings.region, trail_bucket=settings.trail_bucket, history=settings.history)
    if prompter is None:
        from kms_rescue.cli.prompter import QuestionaryPrompter

        prompter = QuestionaryPrompter()
    out, err = consoles or _consoles()
    session = RescueSession(prompter, out, err, settings, progress_bar=progress_bar)
    if on_session is not None:
        on_session(session)
    try:
        return session.run(key)
    except KeyboardInterrupt:
        err.print("kms-rescue: interrupted: nothing was half-applied")
        return EXIT_INTERRUPTED
    except KmsRescueError:
        raise


def register(app: typer.Typer) -> None:
    @app.command("rescue", epilog=EPILOG)
    def rescue(
        key: str | None = typer.Argument(
            None, metavar="[KEY]",
            help="The key: its ARN, an alias ARN, or a key id / alias/NAME with --region (asked when missing)."),
        region: str | None = typer.Option(None, "--region", autocompletion=complete_region,
                                          help="The key's Region (a key ARN carries its own)."),
        profile: list[str] = typer.Option([], "--profile", "-p", autocompletion=complete_profile,
                                          help="Only this profile (repeatable; `env` = environment credentials)."),
        role_arn: list[str] = typer.Option([], "--role-arn", help="Also try this role (repeatable)."),
        base_profile: str | None = typer.Option(None, "--base-profile", autocompletion=complete_profile,
                                                help="Assume --role-arn roles from this profile only."),
        timeout: float = typer.Option(10.0, "--timeout", help="Seconds allowed for credentials and each AWS call."),
        deadline: float = typer.Option(DEFAULT_DEADLINE, "--deadline", help=DEADLINE_HELP),
        backup_dir: str | None = typer.Option(None, "--backup-dir",
                                              help="Where the policy backup goes (default: the current directory)."),
        ticket_dir: str | None = typer.Option(None, "--ticket-dir",
                                              help="Where a ticket draft goes (default: the current directory)."),
        to: str | None = typer.Option(None, "--to", help="The escalation address for the ticket."),
        trail_bucket: str | None = typer.Option(None, "--trail-bucket",
                                                help="The trail's S3 bucket, for the Athena query."),
        no_input: bool = typer.Option(False, "--no-input",
                                      help="Ask nothing: print the report and exit with its code."),
    ) -> None:
        """Walk the recovery runbook for a KMS key you are locked out of: find who can manage it, fix it safely,
        or draft the escalation."""
        positive_seconds(timeout, "--timeout")
        check_deadline(deadline)
        settings = SessionSettings(region=region, profiles=profile, role_arns=role_arn, base_profile=base_profile,
                                   timeout=timeout, deadline=deadline, trail_bucket=trail_bucket, backup_dir=backup_dir,
                                   ticket_dir=ticket_dir, to=to)
        raise typer.Exit(run_rescue(key, settings, interactive=is_interactive(no_input)))


__all__ = ["RescueSession", "SessionSettings", "calls_table", "explain_verdict", "is_interactive", "register",
           "run_rescue", "sigint_held"]

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
policy write cannot be cut in half (Ctrl-C, SIGTERM and SIGHUP are held back for that one call alone, then the
write is verified and the restore command printed before exiting 128 + the signal), and a ticket being drafted is
saved. Every write needs the key id's first characters typed (docs/rescue.md).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kms_rescue.cli._complete import complete_profile, complete_region
from kms_rescue.cli._progress import ProbeProgress
from kms_rescue.cli.fixflow import (
    SignalExit,
    change_key_state,
    outcome_lines,
    outcome_status,
    plan_for,
    run_fix,
    save_proposal,
    sigint_held,
    signals_held,
)
from kms_rescue.cli.options import positive_seconds
from kms_rescue.cli.prompter import Choice, Prompter, QuestionaryPrompter
from kms_rescue.cli.report import DEADLINE_HELP, DEFAULT_DEADLINE, check_deadline, run_report
from kms_rescue.cli.ticket import escalation_address, open_support_case, save_draft, with_aliases, write_ticket
from kms_rescue.errors import KmsRescueError, UsageError
from kms_rescue.policy.partitions import is_region_code
from kms_rescue.policy.principals import parse_caller
from kms_rescue.render.styles import URGENCY_STYLES, outcome_style
from kms_rescue.status import ExitStatus

if TYPE_CHECKING:
    from rich.console import Console

    from kms_rescue.aws.keyref import KeyRef
    from kms_rescue.aws.results import IdentitySpec, Investigation
    from kms_rescue.report import IdentityReport, Report

EPILOG = (
    "Examples: kms-rescue arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab · "
    "kms-rescue rescue alias/payments --region us-east-1 --role-arn arn:aws:iam::111122223333:role/KeyAdmin · "
    "kms-rescue demo (try it on a local lab first). Without a terminal (or with --no-input) it prints the report "
    "and exits with its code: 0 manageable, 3 recoverable, 4 locked out, 5 undetermined, 6 not found "
    "(docs/exit-status.md)."
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
    role_session_name: str | None = None  # the session name for roles assumed (--role-session-name)
    extra_specs: list[Any] = field(default_factory=list)  # identities added during the session


# --- signals -----------------------------------------------------------------------------------------------------
# SIGINT, SIGTERM and SIGHUP are held back for the one PutKeyPolicy call (kms_rescue.cli.fixflow.signals_held).


# --- output helpers ----------------------------------------------------------------------------------------------


def _consoles(width: int | None = None) -> tuple[Console, Console]:
    # Deferred for start-up time: lint and explain never import rich.
    from rich.console import Console

    no_color = "NO_COLOR" in os.environ
    return (Console(file=sys.stdout, width=width, highlight=False, no_color=no_color, emoji=False),
            Console(file=sys.stderr, width=width, highlight=False, no_color=no_color, emoji=False))


def calls_table(report: Report) -> Any:
    """The identities × calls table (rich)."""
    # Deferred for start-up time: lint and explain never import rich.
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from kms_rescue.render.report_view import grid, short_outcome

    headings, rows = grid(report)
    table = Table(title="Identities and calls", title_justify="left", box=box.SIMPLE_HEAD, expand=True)
    # The caller's ARN goes under the identity's name, so the outcome columns keep their width (as in the report).
    ident_width = min(28, max([8, *(len(r.name) for r in rows), *(len(r.arn) for r in rows)]))
    table.add_column("Identity / caller", overflow="fold", min_width=ident_width, ratio=1)
    for col, h in enumerate(headings[2:], start=2):
        cells = [r.status if col == 2 else r.manage if col == len(headings) - 1 else r.cells[col - 3] for r in rows]
        table.add_column(h, no_wrap=True, min_width=max([len(h), *(len(short_outcome(c)) for c in cells)]))

    def cell(value: str) -> Text:
        return Text(short_outcome(value), style=outcome_style(value))

    for row in rows:
        who = Text(row.name, style="bold")
        if row.arn and row.arn != "-":
            who.append("\n" + row.arn, style="dim")
        table.add_row(who, cell(row.status), *(cell(c) for c in row.cells), cell(row.manage))
    return table


#: Below this width the identities table becomes a stacked list: a table would drop its columns.
STACKED_BELOW = 80


def stacked_calls(report: Report) -> list[tuple[str, str]]:
    """The identities × calls table as a list, for narrow terminals: each identity's name, whether it can manage
    the key and its status first, then its caller and calls (lines break between words, never inside a name)."""
    # Deferred for start-up time: --help, lint and explain never load the report layer.
    from kms_rescue.render.report_view import grid

    headings, rows = grid(report)
    calls = headings[3:-1]
    out: list[tuple[str, str]] = [("Identities and calls", "bold")]
    for row in rows:
        style = outcome_style(row.manage)
        out.append((f"{row.name}: can manage: {row.manage} (status {row.status})", style))
        if row.arn:
            out.append((f"  {row.arn}", ""))
        out.append(("  " + ", ".join(f"{h} {c}" for h, c in zip(calls, row.cells, strict=True)), "dim"))
    return out


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
        self.outcome: Any = None
        self.saved_proposal: Path | None = None
        self.tried_a_path = False  # a re-run with a role the report named
        self.redactor: Any = None

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self.settings.environ is None else self.settings.environ

    def say(self, text: str = "", style: str | None = None) -> None:
        # Deferred for start-up time: lint and explain never import rich.
        from rich.text import Text

        self.out.print(Text(text, style=style or ""))

    def heading(self, text: str) -> None:
        # Deferred for start-up time: lint and explain never import rich.
        from rich.rule import Rule

        self.out.print(Rule(text, align="left"))

    def say_lines(self, lines: Sequence[tuple[str, str]]) -> None:
        """Lines from :mod:`kms_rescue.cli.fixflow`; commands (cyan) are never wrapped, so they paste."""
        # Deferred for start-up time: lint and explain never import rich.
        from rich.text import Text

        for text, style in lines:
            self.out.print(Text(text, style=style), soft_wrap=style == "cyan")

    # -- 1. the key ---------------------------------------------------------------------------------------------

    def _default_region(self) -> str | None:
        """--region, else the AWS CLI's Region chain (AWS_REGION, AWS_DEFAULT_REGION, the profile's region)."""
        # Deferred for start-up time: kms_rescue.aws imports boto3.
        from kms_rescue.aws.conventions import choose_region

        return choose_region(self.settings.region, profiles=self.settings.profiles, environ=self.environ).region

    def _parse(self, value: str) -> KeyRef:
        # Deferred for start-up time: kms_rescue.aws imports boto3.
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
        # Deferred for start-up time: kms_rescue.aws imports boto3.
        from kms_rescue.aws.keyref import parse_key_ref

        value = given
        if value is not None and (problem := self._validate_key_or_needs_region(value)) is not None:
            self.say(f"{value.strip()!r}: {problem}. Enter the key again.", "yellow")  # a typo is asked again
            value = None
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
        # Deferred for start-up time: kms_rescue.aws imports boto3.
        from kms_rescue.aws.results import IdentitySpec
        from kms_rescue.aws.sessions import SESSION_NAME_RE, discover_identities, role_name

        s = self.settings
        specs = discover_identities(s.profiles, s.role_arns, s.base_profile, environ=self.environ,
                                    role_session_name=s.role_session_name)
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
            session = self.prompter.text(
                f"Session name for {role_name(arn)}? (a policy may exempt only a named session)",
                default=self.settings.role_session_name or "kms-rescue",
                validate=lambda v: None if SESSION_NAME_RE.match(v.strip()) else "2 to 64 of letters, digits and "
                                                                                  "=,.@_-").strip()
            chosen.append(IdentitySpec(name=f"{role_name(arn)}@{base.name}", source="assume_role",
                                       profile=base.profile, role_arn=arn, base=base.name, kind="assume_role",
                                       session_name=session))
        return chosen

    def unlock_mfa(self, specs: Sequence[IdentitySpec], region: str | None = None) -> None:
        """Role profiles that need an MFA code: ask once each, here (never from a probe thread), and let botocore
        cache the role's credentials where the AWS CLI keeps them, so the probes reuse them."""
        # Deferred for start-up time: kms_rescue.aws imports boto3.
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
        # Deferred for start-up time: kms_rescue.aws imports boto3.
        from kms_rescue.aws.investigate import InvestigateOptions, investigate
        from kms_rescue.cli._runtime import command_runtime
        from kms_rescue.report import build_report

        s = self.settings
        options = InvestigateOptions(region=ref.region, timeout=s.timeout, history=s.history,
                                     trail_bucket=s.trail_bucket, environ=s.environ, deadline=s.deadline)
        with command_runtime(options.redactor) as runtime:
            if self.progress_bar:
                with ProbeProgress(self.err) as bar:
                    inv = investigate(ref, options, identities=list(specs), progress=bar, runtime=runtime)
            else:
                inv = investigate(ref, options, identities=list(specs), runtime=runtime)
        self.redactor = options.redactor
        self.investigation = inv
        self.report = build_report(inv)
        return self.report

    def show(self, report: Report) -> None:
        from kms_rescue.render.report_view import state_lines  # deferred with the other renderers: start-up time

        for notice, line in zip(report.key_state, state_lines(report), strict=True):
            self.say(line, URGENCY_STYLES[notice.urgency])  # the key's state comes before anything else
        if report.key_state:
            self.say()
        if self.out.width < STACKED_BELOW:
            for text, style in stacked_calls(report):
                self.say(text, style)
        else:
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
            self.key_state_first(report)
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
                self.say_failed_assumes(report)
                added = self.recoverable(report)
                if added is not None and reruns < self.settings.max_reruns:
                    reruns += 1
                    self.specs.append(added)
                    self.say(f"Running again with {added.name} …", "bold")
                    continue
                if added is None and self.tried_a_path:
                    # The last path died: offer the escalation rather than stopping (issue 10).
                    self.say("None of the paths tried could manage the key.", "bold yellow")
                    return self.escalate(report)
                return report.exit_code
            if report.verdict == "undetermined":
                self.show_history(report)
            return self.escalate(report)

    # -- the key's state first: a scheduled deletion, a disabled key -------------------------------------------------

    def key_state_first(self, report: Report) -> None:
        """Pending deletion: offer to cancel it (kms:CancelKeyDeletion was evaluated for each identity), then to
        enable the key (a cancelled deletion leaves it Disabled). Disabled: say how to enable it, and offer to."""

        if self.investigation is None or not report.key.arn:
            return
        if report.key.id:
            # Deferred for start-up time: kms_rescue.aws imports boto3.
            from kms_rescue.aws.apply import describe_journal_entry, last_journal_entry

            entry = last_journal_entry(self.settings.backup_dir or os.getcwd(), report.key.id)
            if entry is not None:
                self.say(describe_journal_entry(entry), "yellow")
        token = (report.key.id or report.key.arn.rsplit("/", 1)[-1])[:8]
        arn = report.key.arn
        for notice in report.key_state:
            if notice.state == "PendingDeletion" and notice.can_cancel:
                who = notice.can_cancel[0]
                if self.prompter.confirm_write(f"Cancel the scheduled deletion of {report.key.id} as {who} (first, "
                                               "before anything else)?", token=token):
                    change = change_key_state("cancel_deletion", self.investigation, who, key_arn=arn,
                                              region=report.key.region or "", timeout=self.settings.timeout,
                                              environ=self.settings.environ)
                    self.say(change.message, "bold green" if change.done else "bold red")
                    if change.done and change.state == "Disabled":
                        self._offer_enable(report, who, token)
                else:
                    self.say(f"Not cancelled. The key is deleted on {notice.deletion_date or 'its deletion date'} "
                             "unless someone runs:", "bold red")
                    self.say_lines([(f"aws kms cancel-key-deletion --key-id {arn}", "cyan")])
            elif notice.state == "Disabled":
                managers = [m.name for m in report.managers]
                self.say("To enable it:")
                self.say_lines([(f"aws kms enable-key --key-id {arn}", "cyan")])
                if managers:
                    self._offer_enable(report, managers[0], token)

    def _offer_enable(self, report: Report, who: str, token: str) -> None:
        assert self.investigation is not None and report.key.arn
        if self.prompter.confirm_write(f"Enable {report.key.id} as {who} (kms:EnableKey)?", token=token):
            change = change_key_state("enable", self.investigation, who, key_arn=report.key.arn,
                                      region=report.key.region or "", timeout=self.settings.timeout,
                                      environ=self.settings.environ)
            self.say(change.message, "bold green" if change.done else "bold red")
        else:
            self.say("Left disabled. To enable it later:")
            self.say_lines([(f"aws kms enable-key --key-id {report.key.arn}", "cyan")])

    # -- manageable: the fix ----------------------------------------------------------------------------------------

    def _probe_for(self, name: str) -> Any:
        assert self.investigation is not None
        return next(p for p in self.investigation.identities if p.spec.name == name)

    def offer_fix(self, report: Report) -> int:
        # Deferred for start-up time: --help, lint and explain never load the report layer.
        from kms_rescue.plan import validate_admin_role

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
        plan = plan_for(report, admin)
        if not plan.changed:
            for note in plan.notes:
                self.say(f"note: {note}", "green")
            self.say("Nothing to change: the policy already has what the fix would add.", "green")
            return report.exit_code
        self.show_diff(plan)
        token = (report.key.id or key_arn.rsplit("/", 1)[-1])[:8]
        if not self.prompter.confirm_write(
                f"Apply this policy to {report.key.id} as {applier.name}? (the current policy is backed up first)",
                token=token):
            self.saved_proposal = save_proposal(plan, self.settings.backup_dir or os.getcwd())
            self.say(f"No change made. The proposed policy is saved in {self.saved_proposal}, to apply later.")
            return report.exit_code
        return self.apply(report, plan, applier)

    def _suggest_admin(self, report: Report, applier: IdentityReport) -> str | None:
        if applier.role_arn and ":role/" in applier.role_arn:
            return applier.role_arn
        if applier.arn:
            caller = parse_caller(applier.arn)
            if caller.kind == "assumed_role" and caller.role_arn:
                return caller.role_arn
        return None

    def show_diff(self, plan: Any) -> None:
        # Deferred for start-up time: lint and explain never import rich.
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
        assert self.investigation is not None
        outcome = run_fix(plan, self.investigation, applier, region=report.key.region or "",
                          timeout=self.settings.timeout, backup_dir=self.settings.backup_dir or os.getcwd(),
                          environ=self.settings.environ,
                          before_write=lambda path: self.say(
                              f"Backed up the current policy to {path} (mode 0600). Checks passed; calling "
                              "kms:PutKeyPolicy with the lockout safety check on …"))
        self.applied = outcome.result
        self.outcome = outcome
        self.say_lines(outcome_lines(outcome))
        if outcome.signals:
            raise SignalExit(outcome.signals[0])
        if outcome.refused is not None:  # the checks refused it: nothing changed, the key is as the report says
            return report.exit_code
        return outcome_status(outcome)

    # -- recoverable --------------------------------------------------------------------------------------------

    def say_failed_assumes(self, report: Report) -> None:
        """AWS's own reason for each role that could not be assumed (the probe recorded it; the table only says the
        credentials did not work)."""
        assert self.investigation is not None
        for probe in self.investigation.identities:
            if probe.spec.source != "assume_role":
                continue
            failed = [c for c in probe.calls if c.error_code and "AssumeRole" in (c.operation or "")]
            for call in failed[-1:]:
                self.say(f"{probe.spec.name}: sts:AssumeRole of {probe.spec.role_arn} failed: {call.error_code}: "
                         f"{call.message}", "yellow")

    def _assume_bases(self, report: Report) -> list[IdentitySpec]:
        """Identities a role can be assumed from: connected, not themselves assumed, and never the root user (AWS
        does not let the root user assume a role: IAM User Guide, "Methods to assume a role")."""
        out = []
        for sp in self.specs:
            ident = report.identity(sp.name)
            if sp.source == "assume_role" or ident is None or ident.status != "ok":
                continue
            if ident.arn and ident.arn.endswith(":root"):
                continue
            out.append(sp)
        return out

    def recoverable(self, report: Report) -> IdentitySpec | None:
        """Show the next steps; return an identity to add for another run (or None to stop)."""

        # Deferred for start-up time: kms_rescue.aws imports boto3.
        from kms_rescue.aws.results import IdentitySpec
        from kms_rescue.aws.sessions import SESSION_NAME_RE, role_name

        self.heading("What to do next")
        for n, step in enumerate(report.next_steps, 1):
            self.say(f"{n}. {step.detail}")
            if step.command:
                self.say_lines([(f"   $ {step.command}", "cyan")])
            if step.policy is not None:
                self.say("   " + json.dumps(step.policy, indent=2).replace("\n", "\n   "), "cyan")
        # The role each step names, and the session name the policy requires (in the step's command).
        named: dict[str, str | None] = {}
        for step in report.next_steps:
            if step.action != "assume_role" or not step.principal or ":role/" not in step.principal \
                    or "*" in step.principal:
                continue
            words = shlex.split(step.command or "")
            session = words[words.index("--role-session-name") + 1] if "--role-session-name" in words[:-1] else None
            named.setdefault(step.principal, session)
        tried = {(sp.role_arn, sp.session_name) for sp in self.specs if sp.source == "assume_role"}
        roles = [r for r, sess in named.items() if (r, sess or self.settings.role_session_name) not in tried]
        bases = self._assume_bases(report)
        if not roles or not bases:
            self.say("When you have credentials for one of these, run the session again with them "
                     "(e.g. kms-rescue KEY --role-arn ROLE --role-session-name NAME, or with the profile).")
            return None
        choices = [Choice(f"assume {r}" + (f" as session {named[r]}" if named[r] else ""), r) for r in roles]
        choices.append(Choice("no, stop here", ""))
        role = self.prompter.select("Run again, assuming the role that can manage the key?", choices,
                                    default=roles[0])
        if not role:
            return None
        base = bases[0]
        if len(bases) > 1:
            name = self.prompter.select(f"Assume {role_name(role)} from which identity?",
                                        [Choice(b.name, b.name) for b in bases], default=bases[0].name)
            base = next(b for b in bases if b.name == name)
        session_name = named[role] or self.settings.role_session_name
        if named[role]:
            session_name = self.prompter.text(
                f"Session name for {role_name(role)}? (the policy exempts only the session {named[role]})",
                default=named[role] or "",
                validate=lambda v: None if SESSION_NAME_RE.match(v.strip()) else
                "2 to 64 of letters, digits and =,.@_-").strip()
        self.tried_a_path = True
        return IdentitySpec(name=f"{role_name(role)}@{base.name}", source="assume_role", profile=base.profile,
                            role_arn=role, base=base.name, kind="assume_role", session_name=session_name)

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
        # Deferred for start-up time: --help, lint and explain never load the report layer.
        from kms_rescue.render.ticket import TicketFormat, build_ticket, default_filename, render, valid_address

        self.heading("Escalate")
        self.say(f"Nobody you can use manages this key. The runbook's next step: contact your cloud team or AWS "
                 f"Support with the key ARN ({report.key.arn or report.key.input}). AWS verifies the request with "
                 "a call to the account's phone number, works with the root user, and may ask for a recovery IAM "
                 "user to exist.")
        address = escalation_address(self.settings.to, self.environ)
        if self.investigation is not None:
            report = with_aliases(report, self.investigation, timeout=self.settings.timeout,
                                  environ=self.settings.environ)
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

        return run_report(key, timeout=settings.timeout, deadline=settings.deadline,
                          profiles=list(settings.profiles),
                          role_arns=list(settings.role_arns), base_profile=settings.base_profile,
                          role_session_name=settings.role_session_name,
                          region=settings.region, trail_bucket=settings.trail_bucket, history=settings.history)
    if prompter is None:
        prompter = QuestionaryPrompter()
    out, err = consoles or _consoles()
    session = RescueSession(prompter, out, err, settings, progress_bar=progress_bar)
    if on_session is not None:
        on_session(session)
    try:
        return session.run(key)
    except KeyboardInterrupt:
        err.print("kms-rescue: interrupted: nothing was half-applied")
        return ExitStatus.INTERRUPTED
    except SignalExit as exc:
        err.print(f"kms-rescue: signal {exc.signum} arrived during the write: the write finished and was read "
                  "back (above); exiting")
        return exc.exit_code
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
        role_session_name: str | None = typer.Option(
            None, "--role-session-name", help="The session name for roles assumed (a policy may exempt only one)."),
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
                                   ticket_dir=ticket_dir, to=to, role_session_name=role_session_name)
        raise typer.Exit(run_rescue(key, settings, interactive=is_interactive(no_input)))


__all__ = ["RescueSession", "SessionSettings", "calls_table", "explain_verdict", "is_interactive", "register",
           "run_rescue", "sigint_held", "signals_held"]

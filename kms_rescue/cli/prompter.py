"""The questions the rescue session asks, behind one small interface.

:class:`QuestionaryPrompter` asks on the terminal with questionary; :class:`FakePrompter` answers from a script so
tests can walk every branch of the session without a terminal. Ctrl-C while a question is open raises
``KeyboardInterrupt`` (questionary's ``unsafe_ask``), which the session turns into exit code 130.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

#: A validator returns None when the answer is fine, else the message to show.
Validator = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Choice:
    title: str
    value: str
    checked: bool = False


@runtime_checkable
class Prompter(Protocol):
    """Every question the session asks. Each raises ``KeyboardInterrupt`` on Ctrl-C."""

    def text(self, message: str, *, default: str = "", validate: Validator | None = None) -> str: ...

    def secret(self, message: str) -> str: ...

    def confirm(self, message: str, *, default: bool = False) -> bool: ...

    def confirm_write(self, message: str, *, token: str) -> bool:
        """A question whose Yes writes to AWS: True only when the user typed ``token`` (the first characters of the
        key id) and pressed Enter; anything else is No."""
        ...

    def select(self, message: str, choices: Sequence[Choice], *, default: str | None = None) -> str: ...

    def checkbox(self, message: str, choices: Sequence[Choice]) -> list[str]: ...


class QuestionaryPrompter:
    """Questions on the terminal (questionary). Answers are never echoed to logs; secrets are masked."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs  # e.g. input/output for prompt_toolkit, in tests

    @staticmethod
    def _check(answer: Any) -> Any:
        if answer is None:  # questionary returns None when the prompt was cancelled
            raise KeyboardInterrupt
        return answer

    def text(self, message: str, *, default: str = "", validate: Validator | None = None) -> str:
        # Deferred for start-up time: questionary loads prompt_toolkit, needed only to ask.
        import questionary

        # The answer is checked after Enter, and a problem is printed as a paragraph that wraps: prompt_toolkit's
        # validation toolbar is one line, which cuts a long message at the screen's edge.
        value = default
        while True:
            value = str(self._check(questionary.text(message, default=value, **self._kwargs).unsafe_ask()))
            problem = validate(value) if validate is not None else None
            if problem is None:
                return value
            questionary.print(f"  {problem}", style="fg:ansiyellow", **self._print_kwargs())

    def _print_kwargs(self) -> dict[str, Any]:
        output = self._kwargs.get("output")  # prompt_toolkit's Output, in tests
        return {"output": output} if output is not None else {}

    def secret(self, message: str) -> str:
        # Deferred for start-up time: questionary loads prompt_toolkit, needed only to ask.
        import questionary

        return str(self._check(questionary.password(message, **self._kwargs).unsafe_ask()))

    def confirm(self, message: str, *, default: bool = False) -> bool:
        # Deferred for start-up time: questionary loads prompt_toolkit, needed only to ask.
        import questionary

        # auto_enter=False: a y or n only counts once Enter is pressed, so typing ahead never answers.
        return bool(self._check(questionary.confirm(message, default=default, auto_enter=False,
                                                    **self._kwargs).unsafe_ask()))

    def confirm_write(self, message: str, *, token: str) -> bool:
        # Deferred for start-up time: questionary loads prompt_toolkit, needed only to ask.
        import questionary

        answer = str(self._check(questionary.text(f"{message} Type {token} and press Enter to go ahead "
                                                  "(anything else: no)", **self._kwargs).unsafe_ask()))
        return answer.strip() == token

    def select(self, message: str, choices: Sequence[Choice], *, default: str | None = None) -> str:
        # Deferred for start-up time: questionary loads prompt_toolkit, needed only to ask.
        import questionary

        options = [questionary.Choice(c.title, value=c.value) for c in choices]
        chosen = next((o for o in options if o.value == default), None)
        return str(self._check(questionary.select(message, choices=options, default=chosen,
                                                  **self._kwargs).unsafe_ask()))

    def checkbox(self, message: str, choices: Sequence[Choice]) -> list[str]:
        # Deferred for start-up time: questionary loads prompt_toolkit, needed only to ask.
        import questionary

        options = [questionary.Choice(c.title, value=c.value, checked=c.checked) for c in choices]
        return [str(v) for v in self._check(questionary.checkbox(message, choices=options,
                                                                 **self._kwargs).unsafe_ask())]


# --- the scripted fake -----------------------------------------------------------------------------------------


class ScriptError(AssertionError):
    """The session asked something the script did not expect."""


@dataclass
class Asked:
    """One question the session asked, and the answer given."""

    kind: str
    message: str
    answer: Any
    choices: tuple[Choice, ...] = ()
    default: Any = None


#: A scripted step: (kind, answer) or (kind, text the question must contain, answer). An answer may be a
#: ``KeyboardInterrupt`` instance (Ctrl-C at that question) or a callable that gets the question's choices.
Step = tuple[Any, ...]


class FakePrompter:
    """Answers questions from a script, in order, and records every question.

    >>> p = FakePrompter([("confirm", "Investigate", True), ("text", "alias/x")])
    >>> p.confirm("Investigate this key?")
    True

    ``"default"`` as an answer takes the question's default (for ``checkbox``: the ticked choices). A text answer
    is checked with the question's validator, as the terminal would: an invalid one raises :class:`ScriptError`.
    """

    def __init__(self, script: Iterable[Step]) -> None:
        self.script: list[Step] = list(script)
        self.asked: list[Asked] = []

    def _next(self, kind: str, message: str) -> Any:
        if not self.script:
            raise ScriptError(f"unexpected {kind} question (script exhausted): {message!r}")
        step = self.script.pop(0)
        want_kind = step[0]
        if want_kind != kind:
            raise ScriptError(f"expected a {want_kind} question, got {kind}: {message!r}")
        if len(step) == 3:
            needle, answer = step[1], step[2]
            if needle.lower() not in message.lower():
                raise ScriptError(f"expected a {kind} question containing {needle!r}, got {message!r}")
        else:
            answer = step[1]
        if isinstance(answer, BaseException):
            self.asked.append(Asked(kind, message, "^C"))
            raise answer
        return answer

    @property
    def done(self) -> bool:
        return not self.script

    def text(self, message: str, *, default: str = "", validate: Validator | None = None) -> str:
        answer = self._next("text", message)
        value = default if answer == "default" else str(answer)
        if validate is not None:
            problem = validate(value)
            if problem is not None:
                raise ScriptError(f"the answer {value!r} to {message!r} is invalid: {problem}")
        self.asked.append(Asked("text", message, value, default=default))
        return value

    def secret(self, message: str) -> str:
        answer = str(self._next("secret", message))
        self.asked.append(Asked("secret", message, "***"))
        return answer

    def confirm(self, message: str, *, default: bool = False) -> bool:
        answer = self._next("confirm", message)
        value = default if answer == "default" else bool(answer)
        self.asked.append(Asked("confirm", message, value, default=default))
        return value

    def confirm_write(self, message: str, *, token: str) -> bool:
        """The script's answer is True (type the token), False, or the text typed."""
        answer = self._next("confirm_write", message)
        typed = token if answer is True else "" if answer is False else str(answer)
        self.asked.append(Asked("confirm_write", message, typed, default=token))
        return typed.strip() == token

    def select(self, message: str, choices: Sequence[Choice], *, default: str | None = None) -> str:
        answer = self._next("select", message)
        if callable(answer):
            answer = answer(choices)
        value = (default or choices[0].value) if answer == "default" else str(answer)
        values = [c.value for c in choices]
        if value not in values:
            # Allow picking by (part of) the title, as a user reads the list.
            titled = [c.value for c in choices if str(answer).lower() in c.title.lower()]
            if len(titled) != 1:
                raise ScriptError(f"{answer!r} is not one of the choices of {message!r}: {values}")
            value = titled[0]
        self.asked.append(Asked("select", message, value, tuple(choices), default))
        return value

    def checkbox(self, message: str, choices: Sequence[Choice]) -> list[str]:
        answer = self._next("checkbox", message)
        if callable(answer):
            answer = answer(choices)
        if answer == "default":
            value = [c.value for c in choices if c.checked]
        else:
            value = [str(v) for v in answer]
            unknown = [v for v in value if v not in {c.value for c in choices}]
            if unknown:
                raise ScriptError(f"{unknown} are not choices of {message!r}")
        self.asked.append(Asked("checkbox", message, value, tuple(choices)))
        return value


__all__ = ["Asked", "Choice", "FakePrompter", "Prompter", "QuestionaryPrompter", "ScriptError", "Validator"]

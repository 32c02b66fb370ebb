"""Running the tool calls of one model reply: trust checks, approvals, concurrency, results."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

from koda.cancel import Cancelled, run_or_cancel
from koda.config_file import project_file
from koda.engine.events import (
    ActionBlocked,
    ApprovalRequest,
    AskUserRequest,
    TodoUpdate,
    ToolCallResult,
    ToolCallStart,
    ToolOutputLine,
)
from koda.engine.inbox import Inbox
from koda.engine.loop_guard import LoopGuard, args_preview, repeat_warning
from koda.engine.sink import EngineSink
from koda.engine.stopped import TurnStopped
from koda.engine.trust import TrustMode, Verdict, verdict
from koda.permissions import Match
from koda.providers.base import Message, ToolCall
from koda.tools.base import Effect, Tool, ToolContext, ToolError, ToolResult
from koda.tools.bash_effect import command_head

if TYPE_CHECKING:
    from koda.engine.session import KodaSession

log = logging.getLogger(__name__)

CANCELLED_NOTE = "[cancelled by the user before this tool call finished]"
# On an interrupt, how long a tool may take to stop by itself before it is cancelled outright.
# Bash watches the cancel token and stops its process group (SIGTERM, then SIGKILL after half a
# second); a hard cancel mid-spawn or mid-escalation would leave those processes running.
TOOL_STOP_GRACE = 1.0
# The file tools that could change the project's koda.toml.
SETTINGS_WRITERS = frozenset({"Write", "Edit", "Delete"})


class ToolDispatch:
    """Runs calls in order, consecutive read-only ones together; every call gets a result row."""

    def __init__(
        self,
        session: KodaSession,
        sink: EngineSink,
        inbox: Inbox,
        guard: LoopGuard,
        history: list[Message],
    ) -> None:
        self.session = session
        self.sink = sink
        self.inbox = inbox
        self.guard = guard
        self.history = history  # the turn's list, appended to in place
        self.db = session.db
        self.started: set[str] = set()

    async def execute(self, calls: list[ToolCall]) -> None:
        """Run calls in order; consecutive read-only ones together. Every call gets a result row."""
        answered: set[str] = set()
        batch: list[tuple[ToolCall, Tool, int]] = []
        try:
            for call in calls:
                check = self.guard.check(call)
                if check.verdict == "stop":
                    await self.flush(batch, answered)
                    self.close_unanswered(calls, answered, "[not run: the turn was stopped]")
                    raise TurnStopped(
                        f"the model called {call.name} {check.count} times in a row with the same "
                        f"arguments ({args_preview(call.arguments)}); stopped to save your tokens"
                    )
                tool, problem = self.resolve(call)
                if tool is None:
                    await self.flush(batch, answered)
                    self.finish(call, ToolResult(problem, ok=False), answered)
                    continue
                warn_count = check.count if check.verdict == "warn" else 0
                effect = self.effect_of(tool, call)
                match = self.rule_for(tool, call)
                if effect == Effect.READ_ONLY and (match is None or match.action == "allow"):
                    batch.append((call, tool, warn_count))
                    continue
                await self.flush(batch, answered)
                await self.gated(call, tool, effect, match, answered, warn_count)
            await self.flush(batch, answered)
        except Cancelled:
            self.close_unanswered(calls, answered, CANCELLED_NOTE)
            raise

    def resolve(self, call: ToolCall) -> tuple[Tool | None, str]:
        tool = self.session.agent.catalog.get(call.name)
        if tool is None:
            names = ", ".join(self.session.agent.catalog.names())
            return None, f"Unknown tool '{call.name}'. Available tools: {names}."
        allowed = self.session.allowed_tools
        if allowed is not None and tool.name not in allowed:
            return None, (
                f"{tool.name} is not available while the active skill limits tools to "
                f"{', '.join(sorted(allowed))}."
            )
        if not isinstance(call.arguments, dict):
            return (
                None,
                f"{tool.name} needs its arguments as a JSON object, "
                f"got {type(call.arguments).__name__}.",
            )
        return tool, ""

    def undoes_own_work(self, tool: Tool, call: ToolCall) -> bool:
        """Deleting a file this session created takes back Koda's own change: no approval,
        in any mode (the tool says so by lowering its effect for such files)."""
        return (
            getattr(tool, "owned_effect", None) is not None
            and self.effect_of(tool, call) != Effect.DESTRUCTIVE
        )

    def rule_for(self, tool: Tool, call: ToolCall) -> Match | None:
        """The koda.toml rule (deny, ask or allow) that decides this call, if any."""
        agent = self.session.agent
        return agent.settings.permissions.decide(tool.name, call.arguments, agent.project_root)

    def edits_settings(self, tool: Tool, call: ToolCall) -> bool:
        """Whether the call writes, edits or deletes the project's koda.toml (or its folder).

        The model works inside the project and could otherwise grant itself permissions there,
        so such a change is always shown to the user first.
        """
        raw = call.arguments.get("path") if isinstance(call.arguments, dict) else None
        if tool.name not in SETTINGS_WRITERS or not isinstance(raw, str) or not raw.strip():
            return False
        root = self.session.agent.project_root
        try:
            target = os.path.realpath(os.path.join(root, raw))
            settings = os.path.realpath(project_file(root))
        except (OSError, ValueError):
            return False
        # Folded: on a case-insensitive disk .KODA/Koda.toml is the same file.
        return target.casefold() in (settings.casefold(), os.path.dirname(settings).casefold())

    def effect_of(self, tool: Tool, call: ToolCall) -> Effect:
        if self.edits_settings(tool, call):
            return Effect.DESTRUCTIVE  # asks in every mode that runs changes
        # A tool whose effect depends on the session (Delete of a file Koda created) says so.
        owned_effect = getattr(tool, "owned_effect", None)
        try:
            if owned_effect is not None:
                effect: Effect = owned_effect(self.tool_context(call), call.arguments)
                return effect
            return tool.effect(call.arguments)
        except Exception:  # a confused argument must not crash classification
            return Effect.LOCAL_MUTATION

    async def flush(self, batch: list[tuple[ToolCall, Tool, int]], answered: set[str]) -> None:
        """Run the collected read-only calls concurrently; results are kept in call order."""
        if not batch:
            return
        pending = list(batch)
        batch.clear()
        for call, _, _ in pending:
            self.start(call)
        work = asyncio.gather(*(self.invoke(call, tool) for call, tool, _ in pending))
        results = await run_or_cancel(work, self.session.cancel, grace=TOOL_STOP_GRACE)
        for (call, _, warn_count), result in zip(pending, results, strict=True):
            if warn_count:
                result.output += repeat_warning(call, warn_count)
            self.finish(call, result, answered)

    async def gated(
        self,
        call: ToolCall,
        tool: Tool,
        effect: Effect,
        match: Match | None,
        answered: set[str],
        warn_count: int,
    ) -> None:
        settings = self.edits_settings(tool, call)
        rule = self.decide(call, tool, effect, match, settings)
        if rule == "block":
            denied = match if match is not None and match.action == "deny" else None
            self.block(call, tool, denied)
            text = self.blocked_text(call, tool, denied)
            self.finish(call, ToolResult(text, ok=False), answered)
            return
        key = self.approval_key(call, tool, effect)
        if rule == "ask" and (settings or key not in self.session.always_allow):
            refusal = await self.ask(call, tool, effect, remember=not settings)
            if refusal is not None:
                self.finish(call, ToolResult(refusal, ok=False), answered)
                return
        if effect != Effect.READ_ONLY:  # a read that a rule made ask changes nothing
            await self.session.before_changes()
        self.start(call)
        result = await run_or_cancel(
            self.invoke(call, tool), self.session.cancel, grace=TOOL_STOP_GRACE
        )
        if warn_count:
            result.output += repeat_warning(call, warn_count)
        self.finish(call, result, answered)

    def decide(
        self, call: ToolCall, tool: Tool, effect: Effect, match: Match | None, settings: bool
    ) -> Verdict:
        """The user's koda.toml rules first (deny, then Plan mode, ask, allow), else the matrix.

        An allow rule never covers a change to the project's own koda.toml.
        """
        action = match.action if match is not None else None
        if action == "deny":
            return "block"
        own = self.undoes_own_work(tool, call)
        if self.session.mode == TrustMode.PLAN and effect != Effect.READ_ONLY and not own:
            return "block"
        if action == "ask":
            return "ask"
        if action == "allow" and not settings:
            return "run"
        return "run" if own else verdict(self.session.mode, effect)

    def block(self, call: ToolCall, tool: Tool, denied: Match | None) -> None:
        reason = (
            f"denied by {denied.rule.where()}"
            if denied is not None
            else "plan mode allows read-only tools only"
        )
        self.sink.emit(ActionBlocked(call.name, self.summary(tool, call), reason))

    def blocked_text(self, call: ToolCall, tool: Tool, denied: Match | None) -> str:
        if denied is not None:
            return (
                f"Blocked: {self.summary(tool, call)} was not run because the user's koda.toml "
                f"denies it ({denied.rule.where()}). Do not retry it or work around it; "
                "if the task needs it, tell the user."
            )
        return (
            f"Blocked: {self.summary(tool, call)} was not run because the session is in Plan mode, "
            "which allows read-only tools only. Describe the change you would make instead."
        )

    async def ask(
        self, call: ToolCall, tool: Tool, effect: Effect, *, remember: bool = True
    ) -> str | None:
        """Ask for approval; None if approved, else the text the model reads.

        `remember`: whether "approve always" is kept for later calls of the same kind.
        """
        request_id = uuid.uuid4().hex
        preview = self.preview(tool, call)
        self.sink.emit(
            ApprovalRequest(request_id, call.name, self.summary(tool, call), effect.value, preview)
        )
        decision = await self.inbox.approval(request_id)
        if decision.decision == "approve_always" and remember:
            self.session.always_allow.add(self.approval_key(call, tool, effect))
        if decision.approved:
            return None
        if decision.decision == "reject_with_feedback" and decision.feedback:
            return f"The user rejected this action and said: {decision.feedback}"
        if decision.decision == "reject_auto":
            return (
                f"Not run: {decision.reason or 'this action needs approval and nobody can give it'}"
            )
        return "The user rejected this action. Do not retry it unchanged."

    @staticmethod
    def approval_key(call: ToolCall, tool: Tool, effect: Effect) -> str:
        # The catalog's name, not the model's spelling: "bash" must not approve every command.
        key = tool.name
        if tool.name == "Bash" and isinstance(call.arguments, dict):
            key = f"Bash:{command_head(str(call.arguments.get('command', '')))}"
        # Approving `git commit` for good must not approve `git push --force` as well.
        return f"{key}:destructive" if effect == Effect.DESTRUCTIVE else key

    def summary(self, tool: Tool, call: ToolCall) -> str:
        try:
            return tool.summary(call.arguments)
        except Exception:
            return f"{call.name} {args_preview(call.arguments)}"

    def preview(self, tool: Tool, call: ToolCall) -> str | None:
        make = getattr(tool, "preview", None)
        if make is None:
            return None
        try:
            result = make(self.tool_context(call), call.arguments)
        except Exception:
            return None
        return result if isinstance(result, str) else None

    def start(self, call: ToolCall) -> None:
        args = call.arguments if isinstance(call.arguments, dict) else {"value": call.arguments}
        self.started.add(call.id)
        self.sink.emit(ToolCallStart(call.id, call.name, args))

    def tool_context(self, call: ToolCall) -> ToolContext:
        def emit_output(line: str, stream: Any) -> None:
            self.sink.emit(ToolOutputLine(call.id, line, stream))

        window = self.session.provider.capabilities(self.session.model).context_window
        return ToolContext(
            project_root=self.session.agent.project_root,
            cancel=self.session.cancel,
            file_tracker=self.session.file_tracker,
            emit_output=emit_output,
            context_window=window,
            session_id=self.session.id,
            store=self.db,
            ask_user=self.ask_user,
            data_dir=self.session.data_dir,
            processes=self.session.processes,
            launcher=self.session.launcher,
        )

    async def ask_user(self, question: str, options: list[str]) -> str | None:
        """A question for the human; None when nobody can answer (headless, sub-agents)."""
        request_id = uuid.uuid4().hex
        self.sink.emit(AskUserRequest(request_id, question, list(options)))
        answer = await self.inbox.answer(request_id)
        return answer or None

    async def invoke(self, call: ToolCall, tool: Tool) -> ToolResult:
        try:
            return await tool.run(self.tool_context(call), call.arguments)
        except ToolError as exc:
            return ToolResult(str(exc), ok=False)
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as exc:
            log.exception("tool %s failed", call.name)
            return ToolResult(
                f"{call.name} failed unexpectedly: {type(exc).__name__}: {exc}", ok=False
            )

    def finish(self, call: ToolCall, result: ToolResult, answered: set[str]) -> None:
        if call.id not in self.started:  # blocked, refused or unknown: still shown as a call
            self.start(call)
        images = [{"media_type": i.media_type, "data": i.data} for i in result.images]
        self.db.messages.insert(
            self.session.id, "tool", result.output, tool_call_id=call.id, tool_name=call.name,
            tool_ok=result.ok, full_output=result.full_output, images=images,
        )  # fmt: skip
        answered.add(call.id)
        self.history.append(
            Message(role="tool", content=result.output, tool_call_id=call.id,
                    tool_name=call.name, images=list(result.images))
        )  # fmt: skip
        self.sink.emit(ToolCallResult(call.id, call.name, result.output, result.ok))
        self.act_on(result)

    def act_on(self, result: ToolResult) -> None:
        """What a tool asked of the engine besides its text."""
        if "todo" in result.meta:
            self.sink.emit(TodoUpdate(list(result.meta["todo"])))
        if "allowed_tools" in result.meta:
            allowed = result.meta["allowed_tools"]
            self.session.allowed_tools = set(allowed) if allowed is not None else None

    def close_unanswered(self, calls: list[ToolCall], answered: set[str], note: str) -> None:
        for call in calls:
            if call.id not in answered:
                self.finish(call, ToolResult(note, ok=False), answered)

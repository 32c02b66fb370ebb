"""How risky a shell command is: a first, deliberately cautious classifier.

The command is tokenised the way a POSIX shell would (quotes, escapes, operators, heredocs),
split into simple commands, and each is judged on its own; the worst verdict wins. Anything
not known to be read-only counts as a local mutation, so mistakes err toward asking.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from koda.tools.base import EFFECT_RANK, Effect

# fmt: off
READ_ONLY_COMMANDS = frozenset({
    "cat", "head", "tail", "less", "wc", "file", "stat", "ls", "tree", "du", "df", "pwd",
    "grep", "rg", "find", "echo", "printf", "whoami", "hostname", "uname", "date", "which",
    "type", "sort", "uniq", "cut", "awk", "tr", "diff", "jq", "basename", "dirname",
    "realpath", "readlink", "true", "false", "test", "[",
    # cd only moves the shell that runs this one command; nothing on disk changes.
    "cd", "pushd", "popd",
})
DESTRUCTIVE_COMMANDS = frozenset({
    "rm", "rmdir", "dd", "shred", "chown", "kill", "pkill", "killall", "sudo", "su",
    "doas", "shutdown", "reboot", "halt", "poweroff",
})
_BRANCH_LISTING = frozenset({
    "--list", "-l", "-a", "-r", "--all", "--remotes", "--contains", "--merged",
    "--no-merged", "--points-at", "--show-current",
})
_BRANCH_CHANGING = frozenset({
    "-d", "-m", "-M", "-c", "-C", "--delete", "--move", "--copy", "-f", "--force", "-u",
    "--set-upstream-to", "--unset-upstream", "--edit-description", "-t", "--track",
    "--no-track",
})
_TAG_LISTING = frozenset({"-l", "--list", "--contains", "--points-at", "--merged", "--no-merged"})
_TAG_READ_FLAGS = _TAG_LISTING | {"-n", "--sort", "--format", "--column", "--color"}
# Words that open or close compound commands rather than naming a program.
_KEYWORDS = frozenset({
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time",
})
# fmt: on
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh"})
READ_ONLY_GIT = frozenset(
    {"status", "log", "diff", "show", "branch", "remote", "rev-parse", "ls-files", "blame", "tag"}
)
VERSION_FLAGS = frozenset({"--version", "-V", "-version"})
# Output targets that are not files.
NULL_TARGETS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr"})

_SEPARATORS = frozenset({"|", "||", "&&", ";", "&", "|&", ";;", ";&", ";;&", "\n", "(", ")"})
_OUTPUT_REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})
_INPUT_REDIRECTS = frozenset({"<", "<<", "<<-", "<<<", "<&"})
# Longest first, so "&&" wins over "&".
_OPERATORS = sorted(
    _SEPARATORS - {"\n"} | _OUTPUT_REDIRECTS | _INPUT_REDIRECTS | {">&"}, key=len, reverse=True
)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
_Checker = Callable[[list[str]], Effect]
_DESTRUCTIVE_WORD = re.compile(
    r"(^|[\s;&|(`])(" + "|".join(sorted(DESTRUCTIVE_COMMANDS)) + r"|mkfs\S*)(\s|$)"
)


def classify(command: str) -> Effect:
    """The worst effect any part of `command` could have."""
    try:
        lexed = _Lexer(command).run()
    except ValueError:
        # The shell may still run the part before the error, so keep an eye out for the worst.
        if _DESTRUCTIVE_WORD.search(command):
            return Effect.DESTRUCTIVE
        return Effect.LOCAL_MUTATION
    effects = [_segment_effect(segment) for segment in _segments(lexed.tokens)]
    if lexed.substitutions:
        effects.append(Effect.LOCAL_MUTATION)
        effects.extend(classify(inner) for inner in lexed.substitutions)
    return _worst(effects)


def _worst(effects: list[Effect]) -> Effect:
    return max(effects, key=EFFECT_RANK.__getitem__, default=Effect.READ_ONLY)


@dataclass(frozen=True)
class _Token:
    kind: str  # "word" or "op"
    text: str


@dataclass
class _Lexed:
    tokens: list[_Token] = field(default_factory=list)
    # The text of every $(...), `...`, <(...) and >(...), which the shell runs as commands.
    substitutions: list[str] = field(default_factory=list)


class _Lexer:
    """Splits shell text into words and operators; raises ValueError on unclosed quotes."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.out = _Lexed()
        self.word: list[str] = []
        self.in_word = False
        self.quoted = False
        self.heredoc_next = False  # the next word is a heredoc delimiter
        self.heredoc_strip = False  # that heredoc is <<- (leading tabs stripped)
        self.heredocs: list[tuple[str, bool, bool]] = []  # delimiter, strip tabs, expands

    def run(self) -> _Lexed:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c == "\\":
                self._escape()
            elif c == "'":
                self._single_quote()
            elif c == '"':
                self._double_quote()
            elif c == "`":
                self._backtick()
            elif c == "$" and s.startswith("(", self.i + 1):
                self._begin_word()
                self.i += 1
                self.word.append(self._take_parens())
            elif c in " \t":
                self._end_word()
                self.i += 1
            elif c == "\n":
                self._end_word()
                self.out.tokens.append(_Token("op", "\n"))
                self.i += 1
                self._heredoc_bodies()
            elif c == "#" and not self.in_word:
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
            elif c in "<>" and s.startswith("(", self.i + 1):
                self._begin_word()
                self.i += 1
                self.word.append(self._take_parens())
            elif c in "|&;<>()":
                self._operator()
            else:
                self._begin_word()
                self.word.append(c)
                self.i += 1
        self._end_word()
        return self.out

    def _begin_word(self) -> None:
        self.in_word = True

    def _end_word(self) -> None:
        if not self.in_word:
            return
        text = "".join(self.word)
        if self.heredoc_next:
            self.heredocs.append((text, self.heredoc_strip, not self.quoted))
            self.heredoc_next = False
        self.out.tokens.append(_Token("word", text))
        self.word, self.in_word, self.quoted = [], False, False

    def _operator(self) -> None:
        s = self.s
        op = next(o for o in _OPERATORS if s.startswith(o, self.i))
        # "2>" and "2>&1": a bare number before a redirection is a file descriptor, not a word.
        if op[0] in "<>" and self.in_word and not self.quoted and "".join(self.word).isdigit():
            self.word, self.in_word = [], False
        self._end_word()
        self.out.tokens.append(_Token("op", op))
        self.i += len(op)
        if op in ("<<", "<<-"):
            self.heredoc_next = True
            self.heredoc_strip = op == "<<-"

    def _escape(self) -> None:
        if self.i + 1 >= len(self.s):
            raise ValueError("trailing backslash")
        nxt = self.s[self.i + 1]
        if nxt != "\n":  # backslash-newline joins lines
            self._begin_word()
            self.quoted = True
            self.word.append(nxt)
        self.i += 2

    def _single_quote(self) -> None:
        end = self.s.find("'", self.i + 1)
        if end < 0:
            raise ValueError("unclosed single quote")
        self._begin_word()
        self.quoted = True
        self.word.append(self.s[self.i + 1 : end])
        self.i = end + 1

    def _double_quote(self) -> None:
        s = self.s
        self._begin_word()
        self.quoted = True
        self.i += 1
        while self.i < len(s):
            c = s[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\" and self.i + 1 < len(s) and s[self.i + 1] in '$`"\\\n':
                self.word.append(s[self.i + 1])
                self.i += 2
            elif c == "$" and s.startswith("(", self.i + 1):
                self.i += 1
                self.word.append(self._take_parens())
            elif c == "`":
                self._backtick()
            else:
                self.word.append(c)
                self.i += 1
        raise ValueError("unclosed double quote")

    def _backtick(self) -> None:
        s = self.s
        j = self.i + 1
        while j < len(s) and s[j] != "`":
            j += 2 if s[j] == "\\" else 1
        if j >= len(s):
            raise ValueError("unclosed backtick")
        self.out.substitutions.append(s[self.i + 1 : j].replace("\\`", "`"))
        self._begin_word()
        self.word.append("`...`")
        self.i = j + 1

    def _take_parens(self) -> str:
        """Consume a balanced (...) starting at self.i; record its text as a command."""
        s, start, depth = self.s, self.i, 0
        j = start
        while j < len(s):
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "'":
                j = s.find("'", j + 1)
                if j < 0:
                    break
            elif c == '"':
                j += 1
                while j < len(s) and s[j] != '"':
                    j += 2 if s[j] == "\\" else 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    self.out.substitutions.append(s[start + 1 : j])
                    self.i = j + 1
                    return "$(...)"
            j += 1
        raise ValueError("unclosed parenthesis")

    def _heredoc_bodies(self) -> None:
        """Skip heredoc text: it is data, not commands, though unquoted ones may expand $(...)."""
        s = self.s
        for delimiter, strip_tabs, expands in self.heredocs:
            while self.i < len(s):
                end = s.find("\n", self.i)
                end = len(s) if end < 0 else end
                line = s[self.i : end]
                self.i = end + 1
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
                if expands and ("$(" in line or "`" in line):
                    self.out.substitutions.append(line)
        self.heredocs = []
        self.i = min(self.i, len(s))


def _segments(tokens: list[_Token]) -> list[list[_Token]]:
    segments: list[list[_Token]] = [[]]
    for token in tokens:
        if token.kind == "op" and token.text in _SEPARATORS:
            segments.append([])
        else:
            segments[-1].append(token)
    return [segment for segment in segments if segment]


def _segment_effect(tokens: list[_Token]) -> Effect:
    words: list[str] = []
    writes_file = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "word":
            words.append(token.text)
            i += 1
            continue
        target = tokens[i + 1].text if i + 1 < len(tokens) and tokens[i + 1].kind == "word" else ""
        if token.text in _OUTPUT_REDIRECTS and target not in NULL_TARGETS:
            writes_file = True
        # ">&2" duplicates a descriptor; ">&file" is bash for writing stdout+stderr to file.
        if token.text == ">&" and not (target.isdigit() or target == "-" or target in NULL_TARGETS):
            writes_file = True
        i += 2 if target else 1
    effect = _command_effect(_strip_prefixes(words))
    if writes_file:
        return _worst([effect, Effect.LOCAL_MUTATION])
    return effect


def _strip_prefixes(words: list[str]) -> list[str]:
    """Drop leading VAR=value assignments and compound-command keywords."""
    i = 0
    while i < len(words) and (_ASSIGNMENT.match(words[i]) or words[i] in _KEYWORDS):
        i += 1
    return words[i:]


def _command_effect(argv: list[str]) -> Effect:
    if not argv:
        return Effect.READ_ONLY
    name = PurePosixPath(argv[0]).name
    args = argv[1:]
    if name in DESTRUCTIVE_COMMANDS or name.startswith("mkfs"):
        return Effect.DESTRUCTIVE
    if name in ("env", "nice", "nohup", "timeout", "command", "builtin", "exec", "xargs"):
        return _wrapped_effect(name, args)
    if name in SHELLS:
        return _shell_effect(args)
    if name == "eval":
        return _worst([Effect.LOCAL_MUTATION, classify(" ".join(args))])
    if name == "for":
        # The loop header only lists words; its body is separate segments.
        return Effect.READ_ONLY
    if name == "git":
        return _git_effect(args)
    checker = _CHECKERS.get(name)
    if checker is not None:
        return checker(args)
    if name in READ_ONLY_COMMANDS:
        return Effect.READ_ONLY
    if len(args) == 1 and args[0] in VERSION_FLAGS and "/" not in argv[0]:
        return Effect.READ_ONLY
    return Effect.LOCAL_MUTATION


def _wrapped_effect(name: str, args: list[str]) -> Effect:
    """Judge the command a wrapper such as `env` or `xargs` runs."""
    takes_value = {
        "nice": {"-n"},
        "timeout": {"-s", "-k", "--signal", "--kill-after"},
        "xargs": {"-I", "-n", "-P", "-d", "-L", "-s", "-E", "-a"},
        "env": {"-u", "-C", "-S"},
    }.get(name, set())
    i = 0
    while i < len(args) and (args[i].startswith("-") or (name == "env" and "=" in args[i])):
        i += 2 if args[i] in takes_value else 1
    if name == "command" and args[:i] and {"-v", "-V"} & set(args[:i]):
        return Effect.READ_ONLY  # `command -v x` only looks x up
    if name == "timeout" and i < len(args):
        i += 1  # the duration
    if name == "xargs" and i >= len(args):
        return Effect.READ_ONLY  # bare xargs runs echo
    return _command_effect(args[i:])


def _shell_effect(args: list[str]) -> Effect:
    for i, arg in enumerate(args):
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg and i + 1 < len(args):
            return _worst([Effect.LOCAL_MUTATION, classify(args[i + 1])])
    # A shell running a script file could do anything the script says.
    return Effect.LOCAL_MUTATION


def _git_effect(args: list[str]) -> Effect:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-C", "-c", "--git-dir", "--work-tree", "--namespace") else 1
    if i >= len(args):
        return Effect.READ_ONLY
    sub, rest = args[i], args[i + 1 :]
    flags = {a.split("=", 1)[0] for a in rest if a.startswith("-")}
    if _git_destroys(sub, rest, flags):
        return Effect.DESTRUCTIVE
    if sub not in READ_ONLY_GIT or "--output" in flags:
        return Effect.LOCAL_MUTATION
    positional = [a for a in rest if not a.startswith("-")]
    # branch and tag list by default but create or delete when given names or flags.
    if sub == "branch":
        changes = bool(flags & _BRANCH_CHANGING) or bool(positional and not flags & _BRANCH_LISTING)
    elif sub == "tag":
        changes = bool(flags - _TAG_READ_FLAGS) or bool(positional and not flags & _TAG_LISTING)
    elif sub == "remote":
        changes = rest not in ([], ["-v"], ["--verbose"]) and rest[:1] != ["get-url"]
    else:
        changes = False
    return Effect.LOCAL_MUTATION if changes else Effect.READ_ONLY


def _git_destroys(sub: str, rest: list[str], flags: set[str]) -> bool:
    if sub == "push":
        forced = flags & {"-f", "--force", "--force-with-lease", "--mirror", "--delete", "-d"}
        return bool(forced) or any(a.startswith("+") for a in rest)
    if sub == "reset":
        return "--hard" in flags
    if sub == "clean":
        return any(f == "--force" or (not f.startswith("--") and "f" in f) for f in flags)
    if sub == "branch":
        return "-D" in flags
    if sub == "checkout":
        return bool(flags & {"-f", "--force"})
    return False


def _find_effect(args: list[str]) -> Effect:
    if any(a in ("-delete", "-exec", "-execdir", "-ok", "-okdir") for a in args):
        return Effect.DESTRUCTIVE
    if any(a in ("-fprint", "-fprint0", "-fprintf", "-fls") for a in args):
        return Effect.LOCAL_MUTATION
    return Effect.READ_ONLY


def _sed_effect(args: list[str]) -> Effect:
    in_place = any(
        a.startswith("--in-place") or (a.startswith("-") and not a.startswith("--") and "i" in a)
        for a in args
    )
    # Plain sed is not on the read-only list: a script can still write files (`w`).
    return Effect.DESTRUCTIVE if in_place else Effect.LOCAL_MUTATION


def _chmod_effect(args: list[str]) -> Effect:
    recursive = any(a == "--recursive" or (a.startswith("-") and "R" in a) for a in args)
    return Effect.DESTRUCTIVE if recursive else Effect.LOCAL_MUTATION


def _awk_effect(args: list[str]) -> Effect:
    # awk can run commands (system(), pipes) and write files (print > f); -i inplace edits.
    risky = re.compile(r"system\s*\(|\||print[f]?\b[^;}]*>")
    if any(a.startswith("-i") for a in args) or any(risky.search(a) for a in args):
        return Effect.LOCAL_MUTATION
    return Effect.READ_ONLY


def _writes_operand(option_prefixes: tuple[str, ...]) -> _Checker:
    """A read-only command that writes a file when given one of these options."""

    def check(args: list[str]) -> Effect:
        if any(a.startswith(option_prefixes) for a in args):
            return Effect.LOCAL_MUTATION
        return Effect.READ_ONLY

    return check


def _uniq_effect(args: list[str]) -> Effect:
    # `uniq in out` writes its second operand.
    operands = [a for a in args if not a.startswith("-")]
    return Effect.LOCAL_MUTATION if len(operands) > 1 else Effect.READ_ONLY


def _hostname_effect(args: list[str]) -> Effect:
    # `hostname NAME` renames the machine.
    return Effect.LOCAL_MUTATION if any(not a.startswith("-") for a in args) else Effect.READ_ONLY


def _rg_effect(args: list[str]) -> Effect:
    # --pre runs an arbitrary program on every file searched.
    return Effect.LOCAL_MUTATION if any(a.startswith("--pre") for a in args) else Effect.READ_ONLY


_CHECKERS: dict[str, _Checker] = {
    "find": _find_effect,
    "sed": _sed_effect,
    "chmod": _chmod_effect,
    "awk": _awk_effect,
    "sort": _writes_operand(("-o", "--output")),
    "tree": _writes_operand(("-o",)),
    "date": _writes_operand(("-s", "--set")),
    "uniq": _uniq_effect,
    "hostname": _hostname_effect,
    "rg": _rg_effect,
}


def command_head(command: str) -> str:
    """The program and its subcommand (`git commit`, `npm test`), for remembering approvals."""
    words = [w for w in command.split() if "=" not in w or w.startswith("-")]
    head = words[:1]
    if (
        len(words) > 1
        and words[1].replace("-", "").replace("_", "").isalnum()
        and not words[1].startswith("-")
    ):
        head.append(words[1])
    return " ".join(head)

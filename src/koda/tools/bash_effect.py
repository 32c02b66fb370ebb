"""How risky a shell command is: a first, deliberately cautious classifier.

The command is tokenised the way a POSIX shell would (quotes, escapes, operators, heredocs),
split into simple commands, and each is judged on its own; the worst verdict wins. Wrappers
(`env`, `xargs`, `timeout`, `sh -c`, `find -exec`, `eval`, ...) are looked through to the command
they run, command and process substitutions are judged as commands, here-documents are data unless
a shell reads them. Anything not known to be read-only counts as a local mutation, so mistakes err
toward asking. This is a UX layer, not a security boundary: the sandbox holds when it is wrong.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

from koda.tools.base import Effect

# fmt: off
READ_ONLY_COMMANDS = frozenset({
    "cat", "head", "tail", "less", "wc", "file", "stat", "ls", "tree", "du", "df", "pwd",
    "grep", "rg", "find", "echo", "printf", "whoami", "hostname", "uname", "date", "which",
    "type", "sort", "uniq", "cut", "awk", "tr", "diff", "jq", "basename", "dirname",
    "realpath", "readlink", "true", "false", "test", "[", "read", "printenv", "seq", "nl",
    "more", "tac", "column", "comm", "paste", "md5sum", "sha1sum", "sha256sum",
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
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "esac",
})
# Programs that run the command given in their arguments, with the options that take a value.
_WRAPPERS: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "nohup": frozenset(),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    "time": frozenset({"-f", "--format", "-o", "--output"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "xargs": frozenset({
        "-I", "-n", "-P", "-d", "-L", "-l", "-s", "-E", "-e", "-a", "--max-args", "--max-procs",
        "--delimiter", "--arg-file", "--max-lines", "--max-chars", "--eof",
    }),
    "stdbuf": frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}),
    "busybox": frozenset(),
    "watch": frozenset({"-n", "--interval", "-d", "-g"}),
}
_SHELL_VALUE_OPTIONS = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"})
# Interpreters and the option that runs code given on the command line.
_CODE_FLAGS: dict[str, tuple[str, ...]] = {
    "python": ("-c",), "python3": ("-c",), "python2": ("-c",), "pypy3": ("-c",),
    "perl": ("-e", "-E"), "ruby": ("-e",), "node": ("-e", "--eval", "-p", "--print"),
    "deno": ("eval",), "php": ("-r",), "lua": ("-e",),
}
# Code that obviously deletes files.
_DELETING_CODE = re.compile(
    r"rmtree|\bos\.(remove|unlink|rmdir|removedirs)\b|\.unlink\(|\bunlink\b|rmSync|rmdirSync|"
    r"unlinkSync|\brm_r|FileUtils\.rm|\brm\s+-[a-zA-Z]*[rf]|[\"'`]rm\s"
)
_PUBLISH = {
    "npm": {"publish", "unpublish"}, "pnpm": {"publish"}, "yarn": {"publish", "npm"},
    "cargo": {"publish", "yank"}, "twine": {"upload"}, "poetry": {"publish"},
    "gem": {"push", "yank"}, "uv": {"publish"}, "flit": {"publish"}, "hatch": {"publish"},
}
_GH_READ = frozenset({"view", "list", "status", "checks", "diff", "watch", "search", "browse"})
_GH_DESTROY = frozenset({"merge", "delete", "archive"})
_GH_LOCAL = frozenset({"clone", "checkout", "fork", "download", "login", "logout", "setup-git",
                       "refresh", "token", "switch", "install", "upgrade", "set", "sync"})
# fmt: on
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh"})
READ_ONLY_GIT = frozenset(
    {
        "status",
        "log",
        "diff",
        "show",
        "branch",
        "remote",
        "rev-parse",
        "ls-files",
        "blame",
        "tag",
        "ls-remote",
        "describe",
        "shortlog",
        "reflog",
        "cat-file",
        "ls-tree",
        "grep",
        "help",
    }
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
# Same-rank effects still need an order when combined: a local change outranks a remote action,
# so the undo checkpoint a local change needs is not skipped.
_ORDER = {
    Effect.READ_ONLY: 0,
    Effect.REMOTE_ACTION: 1,
    Effect.LOCAL_MUTATION: 2,
    Effect.DESTRUCTIVE: 3,
}
_FORK_BOMB = re.compile(r"(\S+)\s*\(\s*\)\s*\{[^}]*\1\s*\|\s*\1")
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
    if _FORK_BOMB.search(command):
        return Effect.DESTRUCTIVE
    effects = [_segment_effect(segment, piped) for segment, piped in _segments(lexed.tokens)]
    effects.extend(classify(inner) for inner in lexed.substitutions)
    if lexed.defines_function:
        effects.append(Effect.LOCAL_MUTATION)
    return _worst(effects)


def _worst(effects: list[Effect]) -> Effect:
    return max(effects, key=_ORDER.__getitem__, default=Effect.READ_ONLY)


@dataclass(frozen=True)
class _Token:
    kind: str  # "word" or "op"
    text: str
    body: str | None = None  # for a here-document delimiter: the document's text


@dataclass
class _Lexed:
    tokens: list[_Token] = field(default_factory=list)
    # The text of every $(...), `...`, <(...) and >(...), which the shell runs as commands.
    substitutions: list[str] = field(default_factory=list)
    defines_function: bool = False


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
        # delimiter, strip tabs, expands, index of the delimiter token
        self.heredocs: list[tuple[str, bool, bool, int]] = []

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
            elif c == "$" and s.startswith("'", self.i + 1):
                self._ansi_c_quote()
            elif c == "$" and s.startswith('"', self.i + 1):
                self.i += 1  # $"..." is a translated string: a plain double-quoted one here
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
            self.heredocs.append((text, self.heredoc_strip, not self.quoted, len(self.out.tokens)))
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
        tokens = self.out.tokens
        if op == ")" and len(tokens) >= 2 and tokens[-1] == _Token("op", "("):
            # `name() { ...; }`: a function, whose body runs whenever it is called.
            self.out.defines_function = tokens[-2].kind == "word"
        tokens.append(_Token("op", op))
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

    def _ansi_c_quote(self) -> None:
        """$'...' with backslash escapes: `$'rm'` is still rm."""
        s = self.s
        j = self.i + 2
        while j < len(s) and s[j] != "'":
            j += 2 if s[j] == "\\" else 1
        if j >= len(s):
            raise ValueError("unclosed $'")
        raw = s[self.i + 2 : j]
        try:
            text = raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError:
            text = raw
        self._begin_word()
        self.quoted = True
        self.word.append(text)
        self.i = j + 1

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
        """Attach each pending here-document's text to its delimiter token.

        The text is data, not commands (unless a shell reads it), though an unquoted delimiter
        lets $(...) and backticks in it run.
        """
        s = self.s
        for delimiter, strip_tabs, expands, index in self.heredocs:
            lines: list[str] = []
            while self.i < len(s):
                end = s.find("\n", self.i)
                end = len(s) if end < 0 else end
                line = s[self.i : end]
                self.i = end + 1
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
                lines.append(line)
                if expands:
                    self._line_substitutions(line)
            token = self.out.tokens[index]
            self.out.tokens[index] = replace(token, body="\n".join(lines))
        self.heredocs = []
        self.i = min(self.i, len(s))

    def _line_substitutions(self, line: str) -> None:
        """Record the $(...) and `...` in an expanding here-document line."""
        inner = _Lexer(line)
        j = 0
        while j < len(line):
            if line.startswith("$(", j):
                inner.i = j + 1
                inner._take_parens()
                j = inner.i
            elif line[j] == "`":
                inner.i = j
                inner._backtick()
                j = inner.i
            else:
                j += 2 if line[j] == "\\" else 1
        self.out.substitutions.extend(inner.out.substitutions)


def _segments(tokens: list[_Token]) -> list[tuple[list[_Token], bool]]:
    """Simple commands, each with whether its stdin comes from a pipe."""
    segments: list[tuple[list[_Token], bool]] = [([], False)]
    # Where a case pattern (`a|b)`) may have begun: after `case x in` or a `;;`.
    pattern_from: int | None = None
    inherited: list[bool] = []  # per open subshell: whether a pipe feeds it
    for token in tokens:
        if token.kind == "op" and token.text in _SEPARATORS:
            current = segments[-1][0]
            ends_pattern = token.text == ")" and pattern_from is not None
            if ends_pattern and pattern_from is not None:
                for segment, _ in segments[pattern_from:]:
                    segment.clear()  # a case pattern is not a command
                pattern_from = None
            elif token.text in (";;", ";&", ";;&") or (
                current and current[0].text == "case" and current[-1].text == "in"
            ):
                pattern_from = len(segments)
            elif token.text not in ("|", "\n"):
                pattern_from = None
            # Inside `a | ( ... )` every command may read a's output.
            if token.text == "(":
                inherited.append(not current and segments[-1][1])
            elif token.text == ")" and inherited and not ends_pattern:
                inherited.pop()
            piped = token.text in ("|", "|&") or (bool(inherited) and inherited[-1])
            segments.append(([], piped))
        else:
            segments[-1][0].append(token)
    return [(segment, piped) for segment, piped in segments if segment]


@dataclass(frozen=True)
class _Stdin:
    """What a command reads on stdin, when that matters (a shell running it)."""

    text: str | None = None  # a here-document or here-string
    piped: bool = False  # the output of an earlier command in a pipeline


def _segment_effect(tokens: list[_Token], piped: bool) -> Effect:
    words: list[str] = []
    writes_file = False
    stdin = _Stdin(piped=piped)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "word":
            words.append(token.text)
            i += 1
            continue
        has_target = i + 1 < len(tokens) and tokens[i + 1].kind == "word"
        target = tokens[i + 1].text if has_target else ""
        if token.text in _OUTPUT_REDIRECTS and target not in NULL_TARGETS:
            writes_file = True
        # ">&2" duplicates a descriptor; ">&file" is bash for writing stdout+stderr to file.
        if token.text == ">&" and not (target.isdigit() or target == "-" or target in NULL_TARGETS):
            writes_file = True
        if token.text in ("<<", "<<-") and has_target:
            stdin = _Stdin(text=tokens[i + 1].body or "")
        elif token.text == "<<<":
            stdin = _Stdin(text=target)
        elif token.text == "<":
            stdin = _Stdin()  # a file (a script a shell would run, unseen)
        i += 2 if has_target else 1
    effect = _command_effect(_strip_prefixes(words), stdin)
    if writes_file:
        return _worst([effect, Effect.LOCAL_MUTATION])
    return effect


def _strip_prefixes(words: list[str]) -> list[str]:
    """Drop leading VAR=value assignments and compound-command keywords."""
    i = 0
    while i < len(words) and (_ASSIGNMENT.match(words[i]) or words[i] in _KEYWORDS):
        i += 1
    return words[i:]


def _command_effect(argv: list[str], stdin: _Stdin = _Stdin()) -> Effect:
    if not argv:
        return Effect.READ_ONLY
    name = PurePosixPath(argv[0]).name
    args = argv[1:]
    if name in DESTRUCTIVE_COMMANDS or name.startswith("mkfs"):
        return Effect.DESTRUCTIVE
    if name in _WRAPPERS:
        return _wrapped_effect(name, args, stdin)
    if name in SHELLS:
        return _shell_effect(args, stdin)
    if name == "eval":
        # eval runs its arguments, joined, as a fresh command line.
        return classify(" ".join(args))
    if name in ("for", "select", "case", ":"):
        # These headers only list words; the bodies are separate segments.
        return Effect.READ_ONLY
    if name == "git":
        return _git_effect(args)
    code_flags = _CODE_FLAGS.get(name) or _CODE_FLAGS.get(name.rstrip("0123456789."))
    if code_flags is not None and not (len(args) == 1 and args[0] in VERSION_FLAGS):
        return _interpreter_effect(name, args, code_flags)
    if name in ("docker", "podman") and _first_operand(args) == "push":
        return Effect.REMOTE_ACTION
    publish = _PUBLISH.get(name)
    if publish is not None and args and _first_operand(args) in publish:
        return Effect.DESTRUCTIVE  # a published release cannot be taken back
    checker = _CHECKERS.get(name)
    if checker is not None:
        return checker(args)
    if name in READ_ONLY_COMMANDS:
        return Effect.READ_ONLY
    if len(args) == 1 and args[0] in VERSION_FLAGS and "/" not in argv[0]:
        return Effect.READ_ONLY
    return Effect.LOCAL_MUTATION


def _first_operand(args: list[str]) -> str:
    return next((a for a in args if not a.startswith("-")), "")


def _skip_options(args: list[str], takes_value: frozenset[str], *, env: bool = False) -> int:
    """Index of the first argument that is not an option (or, for env, an assignment)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return i + 1
        if not (arg.startswith("-") or (env and "=" in arg and not arg.startswith("="))):
            break
        i += 2 if arg in takes_value else 1
    return i


def _wrapped_effect(name: str, args: list[str], stdin: _Stdin) -> Effect:
    """Judge the command a wrapper such as `env` or `xargs` runs."""
    if name == "env":
        for j, arg in enumerate(args):
            if arg in ("-S", "--split-string"):
                # env -S 'cmd args' splits one string into the command line.
                return classify(" ".join(args[j + 1 :]))
            if not arg.startswith("-") and "=" not in arg:
                break
    i = _skip_options(args, _WRAPPERS[name], env=name == "env")
    effect = Effect.READ_ONLY
    if name == "command" and {"-v", "-V"} & set(args[:i]):
        return Effect.READ_ONLY  # `command -v x` only looks x up
    if name == "timeout" and i < len(args):
        i += 1  # the duration
    if name == "time" and {"-o", "--output"} & set(args[:i]):
        effect = Effect.LOCAL_MUTATION
    if name == "xargs":
        if i >= len(args):
            return Effect.READ_ONLY  # bare xargs runs echo
        # The command xargs runs reads nothing from the pipe; its arguments come from it.
        stdin = _Stdin()
    if name == "watch" and i < len(args):
        # watch runs its arguments through `sh -c`.
        return _worst([effect, classify(" ".join(args[i:]))])
    return _worst([effect, _command_effect(args[i:], stdin)])


def _shell_effect(args: list[str], stdin: _Stdin) -> Effect:
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _SHELL_VALUE_OPTIONS:
            i += 2
            continue
        if arg == "--" or not arg.startswith(("-", "+")) or arg == "-":
            break
        if not arg.startswith("--") and "c" in arg[1:]:
            return classify(args[i + 1]) if i + 1 < len(args) else Effect.LOCAL_MUTATION
        i += 1
    if i < len(args) and args[i] not in ("-", "--"):
        # A shell running a script file could do anything the script says.
        return Effect.LOCAL_MUTATION
    # The shell reads its script from stdin.
    if stdin.text is not None:
        return _worst([Effect.LOCAL_MUTATION, classify(stdin.text)])
    if stdin.piped:
        return Effect.DESTRUCTIVE  # `curl ... | sh`: code nobody has read
    return Effect.LOCAL_MUTATION


def _interpreter_effect(name: str, args: list[str], code_flags: tuple[str, ...]) -> Effect:
    """python -c, perl -e, node -e ...: code runs; obvious deletion is destructive."""
    base = name.rstrip("0123456789.")
    if base == "perl" and any(re.match(r"-[pnlaswTtWXU0-9]*i", a) for a in args):
        return Effect.DESTRUCTIVE  # perl -pi -e edits files in place, like sed -i
    for j, arg in enumerate(args):
        code = None
        if arg in code_flags and j + 1 < len(args):
            code = args[j + 1]
        elif (
            base in ("perl", "python", "ruby") and arg.startswith("-") and not arg.startswith("--")
        ):
            flag = next((f for f in code_flags if arg.endswith(f[1:]) and len(arg) > 2), None)
            if flag is not None and j + 1 < len(args):
                code = args[j + 1]  # combined short options: perl -ne, python -Ic
        if code is not None:
            return Effect.DESTRUCTIVE if _DELETING_CODE.search(code) else Effect.LOCAL_MUTATION
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
    if sub in ("push", "send-email"):
        return Effect.REMOTE_ACTION
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
    effects = [Effect.READ_ONLY]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-delete":
            return Effect.DESTRUCTIVE
        if arg in ("-exec", "-execdir", "-ok", "-okdir"):
            end = i + 1
            while end < len(args) and args[end] not in (";", "+"):
                end += 1
            inner = [a for a in args[i + 1 : end] if a != "{}"] or ["true"]
            effects.append(_command_effect(inner))
            i = end + 1
            continue
        if arg in ("-fprint", "-fprint0", "-fprintf", "-fls"):
            effects.append(Effect.LOCAL_MUTATION)
        i += 1
    return _worst(effects)


_REMOTE_PATH = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[^/:]+:)", re.IGNORECASE)


def _operands(args: list[str], takes_value: frozenset[str]) -> list[str]:
    found: list[str] = []
    i = 0
    while i < len(args):
        if args[i].startswith("-") and len(args[i]) > 1:
            i += 2 if args[i] in takes_value else 1
        else:
            found.append(args[i])
            i += 1
    return found


_SSH_VALUES = frozenset(
    {"-p", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-b", "-c", "-E", "-e", "-m",
     "-O", "-Q", "-S", "-W", "-w", "-B", "-P"}
)  # fmt: skip


def _ssh_effect(args: list[str]) -> Effect:
    i = _skip_options(args, _SSH_VALUES)
    remote_command = args[i + 1 :]
    if remote_command and classify(" ".join(remote_command)) is Effect.DESTRUCTIVE:
        return Effect.DESTRUCTIVE
    return Effect.REMOTE_ACTION


def _copy_effect(args: list[str]) -> Effect:
    """scp and rsync: sending to a remote is a remote action; fetching writes a local file."""
    if any(a.startswith(("--delete", "--remove-source-files")) for a in args):
        return Effect.DESTRUCTIVE
    operands = _operands(args, _SSH_VALUES | {"-e", "--rsh"})
    if operands and _REMOTE_PATH.match(operands[-1]):
        return Effect.REMOTE_ACTION
    return Effect.LOCAL_MUTATION


_CURL_SENDS = ("-d", "--data", "-F", "--form", "-T", "--upload-file", "--json", "-G")
_CURL_VALUES = frozenset(
    {"-H", "--header", "-u", "--user", "-A", "--user-agent", "-e", "--referer", "-b",
     "--cookie", "-m", "--max-time", "--connect-timeout", "-w", "--write-out", "-x", "--proxy",
     "--retry", "-r", "--range", "--cacert", "--cert", "--key", "-E", "--resolve"}
)  # fmt: skip


def _curl_effect(args: list[str]) -> Effect:
    effect = Effect.READ_ONLY
    for j, arg in enumerate(args):
        if j and args[j - 1] in _CURL_VALUES:
            continue
        method = ""
        if arg in ("-X", "--request") and j + 1 < len(args):
            method = args[j + 1]
        elif arg.startswith("-X") and len(arg) > 2:
            method = arg[2:]
        elif arg.startswith("--request="):
            method = arg.split("=", 1)[1]
        if method and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            return Effect.REMOTE_ACTION
        if arg.startswith(_CURL_SENDS) and arg != "-G":
            return Effect.REMOTE_ACTION
        if arg in (
            "-o",
            "--output",
            "-O",
            "--remote-name",
            "--remote-name-all",
            "-c",
            "--cookie-jar",
            "-D",
            "--dump-header",
        ) or arg.startswith(("-o", "--output=")):
            if not (arg in ("-o", "--output") and args[j + 1 : j + 2] in (["-"], ["/dev/null"])):
                effect = Effect.LOCAL_MUTATION
        elif not arg.startswith("--") and arg.startswith("-") and "O" in arg:
            effect = Effect.LOCAL_MUTATION  # -sSLO
    return effect


def _wget_effect(args: list[str]) -> Effect:
    effect = Effect.LOCAL_MUTATION  # wget saves to a file unless told otherwise
    for j, arg in enumerate(args):
        if arg.startswith(("--post-data", "--post-file", "--body-data", "--body-file")):
            return Effect.REMOTE_ACTION
        if arg.startswith("--method") and arg.split("=", 1)[-1].upper() not in ("GET", "HEAD"):
            return Effect.REMOTE_ACTION
        if arg == "--spider":
            effect = Effect.READ_ONLY
        target = None
        if arg in ("-O", "--output-document"):
            target = args[j + 1] if j + 1 < len(args) else ""
        elif arg.startswith("--output-document="):
            target = arg.split("=", 1)[1]
        elif arg.startswith("-") and not arg.startswith("--") and "O" in arg:
            rest = arg[arg.index("O") + 1 :]
            target = rest or (args[j + 1] if j + 1 < len(args) else "")
        if target is not None:
            to_stdout = target in ("-", *NULL_TARGETS)
            effect = Effect.READ_ONLY if to_stdout else Effect.LOCAL_MUTATION
    return effect


_GH_VALUES = frozenset({"-R", "--repo", "-H", "--hostname"})


def _gh_effect(args: list[str]) -> Effect:
    words = _operands(args, _GH_VALUES)
    if not words:
        return Effect.READ_ONLY
    group = words[0]
    if group == "api":
        return _gh_api_effect(args)
    if group in ("search", "browse", "status", "help", "version"):
        return Effect.READ_ONLY
    action = words[1] if len(words) > 1 else ""
    if group == "auth" and action == "status":
        return Effect.READ_ONLY
    if action in _GH_READ or not action:
        return Effect.READ_ONLY
    if action in _GH_DESTROY:
        return Effect.DESTRUCTIVE
    if action in _GH_LOCAL or group in ("extension", "alias", "config", "completion"):
        return Effect.LOCAL_MUTATION
    return Effect.REMOTE_ACTION  # create, comment, edit, close, review, run, ...


def _gh_api_effect(args: list[str]) -> Effect:
    sends = False
    for j, arg in enumerate(args):
        method = ""
        if arg in ("-X", "--method") and j + 1 < len(args):
            method = args[j + 1]
        elif arg.startswith("--method="):
            method = arg.split("=", 1)[1]
        elif arg.startswith("-X") and len(arg) > 2:
            method = arg[2:]
        if method:
            return Effect.READ_ONLY if method.upper() == "GET" else Effect.REMOTE_ACTION
        if arg.startswith(("-f", "-F", "--field", "--raw-field", "--input")):
            sends = True  # gh api switches to POST when given fields
    return Effect.REMOTE_ACTION if sends else Effect.READ_ONLY


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
    "curl": _curl_effect,
    "wget": _wget_effect,
    "gh": _gh_effect,
    "ssh": _ssh_effect,
    "scp": _copy_effect,
    "rsync": _copy_effect,
}


def simple_commands(command: str) -> list[str] | None:
    """Each simple command of `command` on its own, for matching permission rules; None when
    the line cannot be parsed.

    A command is its words joined by spaces (a word is quoted only where the shell would read
    it differently otherwise), without leading VAR=value assignments, input redirections and
    redirections to /dev/null or another descriptor. Output redirections into files are kept,
    at the end: writing a file is part of what the command does. The bodies of command and
    process substitutions and of `sh -c` are listed as commands of their own (the `sh -c` itself
    is not); other wrappers (`env`, `nice`, `timeout`, `xargs`, ...) stay in place as written.
    """
    try:
        lexed = _Lexer(command).run()
    except ValueError:
        return None
    found: list[str] = []
    for segment, _ in _segments(lexed.tokens):
        inner = _segment_commands(segment)
        if inner is None:
            return None
        found.extend(inner)
    for text in lexed.substitutions:
        inner = simple_commands(text)
        if inner is None:
            return None
        found.extend(inner)
    return found


def _segment_commands(tokens: list[_Token]) -> list[str] | None:
    words: list[str] = []
    writes: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "word":
            words.append(token.text)
            i += 1
            continue
        target = tokens[i + 1].text if i + 1 < len(tokens) and tokens[i + 1].kind == "word" else ""
        to_file = target not in NULL_TARGETS and not (
            token.text == ">&" and (target.isdigit() or target == "-")
        )
        if token.text in (*_OUTPUT_REDIRECTS, ">&") and target and to_file:
            writes.extend((token.text, _shown(target)))
        i += 2 if target else 1
    words = _strip_prefixes(words)
    body = _shell_body(words)
    if body is not None:
        return simple_commands(body)
    if not words:
        return []
    return [" ".join([*(_shown(w) for w in words), *writes])]


def _shell_body(words: list[str]) -> str | None:
    """The script of `sh -c SCRIPT` (any shell), else None."""
    if not words or PurePosixPath(words[0]).name not in SHELLS:
        return None
    args = words[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _SHELL_VALUE_OPTIONS:
            i += 2
            continue
        if arg in ("-", "--") or not arg.startswith(("-", "+")):
            return None
        if not arg.startswith("--") and "c" in arg[1:]:
            return args[i + 1] if i + 1 < len(args) else None
        i += 1
    return None


_NEEDS_QUOTES = re.compile(r"[\s;&|<>()`\"'\\#]")


def _shown(word: str) -> str:
    """`word` as the shell would have to be given it to read the same word back."""
    return shlex.quote(word) if not word or _NEEDS_QUOTES.search(word) else word


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
